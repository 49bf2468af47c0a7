"""What the agent said, read back across segment boundaries: a reply's opening phrase is a
segment of its own (`REPLY_FIRST_PHRASE_WORDS`), so a sentence may span two segments."""

from __future__ import annotations

from collections.abc import Iterable

from shared.contract import events as ev


def joined_runs(lines: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(kind, text) lines with consecutive lines of one kind joined by a space."""
    out: list[tuple[str, str]] = []
    for kind, text in lines:
        if out and out[-1][0] == kind:
            out[-1] = (kind, f"{out[-1][1]} {text}")
        else:
            out.append((kind, text))
    return out


def segment_texts(log: Iterable[ev.Event], turn_id: int) -> dict[int, str]:
    """{seq: text} of a turn's `agent.text` segments, as the brain wrote them."""
    return {e.seq: e.text for e in log if isinstance(e, ev.AgentText) and e.turn_id == turn_id}
