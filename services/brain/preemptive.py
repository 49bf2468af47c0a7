"""A turn answered before its final transcript (issue 17): the preemptive reply.

Media writes `turn.preempted` (turn N, the interim words) when the caller has probably finished,
with the turn's one work item. The brain that takes it starts the LLM at once but holds every
effect of the reply: its speakable text, its latency marks, its token usage, and its tool calls
(a held tool call is not even requested). The final transcript (`turn.requested` N) decides:

* the normalised words match: the held text is written (media speaks it) and the reply goes on
  streaming as an ordinary turn; `turn.preempt_resolved` used=true;
* the words differ: the LLM stream is cancelled, nothing of it was written, and the turn is
  answered again from the final words; `turn.preempt_resolved` used=false with the tokens the
  cancelled request cost, also billed as `wasted_prompt_tokens` / `wasted_completion_tokens`;
* a newer turn, a barge-in or the end of the call comes first, or no final comes within
  `preempt_confirm_timeout_s` (media dropped the utterance): cancelled the same way, and the
  turn is not answered (there is no request to answer).

A brain that dies while holding a reply leaves the work item pending: another replica takes it
over and starts again from the log (the held text was never written, so nothing is spoken twice).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.brain.history import Message, build_messages
from services.brain.llm import TokenUsage
from services.brain.turn_log import NOT_FOR_HISTORY
from services.brain.turn_runner import TurnRunner
from shared.contract import events as ev
from shared.contract.utterance_text import same_words
from shared.observability.turn_stages import StageClock

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""Prompt tokens of a request cancelled before its usage arrived, estimated (OpenAI's rule)."""


class Turn(TurnRunner):
    """A turn that may start from a preemptive transcript (else exactly a `TurnRunner`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preempt: ev.TurnPreempted | None = None
        self.confirmed = True  # False while a preemptive reply is held
        self.gate = asyncio.Event()  # set once the held reply may act (text, tools)
        self.gate.set()
        self.final: ev.TurnRequested | None = None
        self.final_seen = asyncio.Event()
        self.held_text: list[str] = []
        self.held_usage: list[TokenUsage] = []
        self.resolved = True  # False while a preemptive reply waits for its final
        self.prompt_chars = 0
        self._exists = True

    # ---- which turn, which words ---------------------------------------------------------
    def _request(
        self, entries: list[tuple[str, ev.Event]]
    ) -> ev.TurnRequested | ev.TurnPreempted | None:
        request = super()._request(entries)
        preempt = next(
            (
                e
                for _, e in entries
                if isinstance(e, ev.TurnPreempted) and e.turn_id == self.turn_id
            ),
            None,
        )
        resolved = any(
            isinstance(e, ev.PreemptResolved) and e.turn_id == self.turn_id for _, e in entries
        )
        if preempt is not None and not resolved:
            self.preempt = preempt
            self.final = request if isinstance(request, ev.TurnRequested) else None
        if request is not None or preempt is None or resolved:
            return request  # an ordinary turn (a preempt left unresolved is resolved below)
        self.confirmed, self.resolved, self._exists = False, False, False
        self.gate.clear()
        return preempt

    def _messages(self, entries: list[tuple[str, ev.Event]]) -> list[Message]:
        if self.confirmed:
            return super()._messages(entries)
        assert self.preempt is not None
        # The conversation as it will be once the final confirms these words.
        probe = ev.TurnRequested(
            call_sid=self.call_sid, turn_id=self.turn_id, text=self.preempt.text
        )
        messages = build_messages([*entries, ("", probe)], before_turn=self.turn_id)
        self.prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        return messages

    @property
    def turn_exists(self) -> bool:
        return self._exists

    def _final_arrived(self, event: ev.TurnRequested) -> None:
        self.final = event
        self._exists = True
        self.final_seen.set()

    # ---- the held reply -------------------------------------------------------------------
    async def _converse(self, messages: list[Message]) -> None:
        if self.confirmed:
            if self.preempt is not None and self.final is not None:  # logged before we started
                await self._resolve(False, self.final.text, "final came first")
            await super()._converse(messages)
            return
        assert self.preempt is not None
        attempt = asyncio.create_task(super()._converse(messages))
        try:
            arrived = await self._wait_final(attempt)
            final = self.final
            if arrived and final is not None and same_words(final.text, self.preempt.text):
                await self._confirm(final)
                await attempt
                return
            reason = "words changed" if final is not None else "no final"
            await self._cancel(attempt)
            await self._discard(final, reason)
            if final is None or self.interrupted.is_set():
                return
            # Answer the words the caller really said, from the log as it is now.
            self.confirmed = True
            self.gate.set()
            entries = await self.deps.log.entries(self.call_sid, skip=NOT_FOR_HISTORY)
            await super()._converse(build_messages(entries, before_turn=self.turn_id))
        finally:
            if not attempt.done():  # cancelled from outside: a newer turn, barge-in, call end
                await self._cancel(attempt)
            if not self.resolved:
                await self._discard(self.final, "superseded")

    async def _wait_final(self, attempt: asyncio.Task[None]) -> bool:
        """Until the final transcript comes (True), or the wait is over (False)."""
        timeout = self.deps.settings.preempt_confirm_timeout_s
        waiter = asyncio.create_task(self.final_seen.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()
        if attempt.done() and not attempt.cancelled() and attempt.exception() is not None:
            raise attempt.exception()  # type: ignore[misc]
        return self.final_seen.is_set()

    async def _confirm(self, final: ev.TurnRequested) -> None:
        """The final has the preempt's words: write what was held, in order, and let the reply
        go on (the LLM stream keeps running meanwhile: what it adds is held until the last
        held chunk is written, so chunks keep their order)."""
        self.resolved = True
        await self._resolve(True, final.text, "matched")
        while self.held_text:
            await super()._say(self.held_text.pop(0))
        self.confirmed = True  # no await since the loop saw nothing left to write
        self.gate.set()  # held tool calls go now; the bookkeeping below can follow them
        await super()._flush_marks()
        usage, self.held_usage = self.held_usage, []
        for piece in usage:
            await super()._usage(piece)

    async def _discard(self, final: ev.TurnRequested | None, reason: str) -> None:
        """The held reply is dropped unheard: record what it cost."""
        if self.resolved or self.preempt is None:
            return
        self.resolved = True
        prompt, completion = self._wasted()
        self.held_text, self.held_usage = [], []
        self.pending_marks, self.marked, self.stages = [], set(), StageClock()
        self.deltas = 0
        self.confirmed = True  # nothing left to hold: the restart (if any) speaks
        await self._resolve(
            False, final.text if final else "", reason, prompt=prompt, completion=completion
        )
        model = self.deps.settings.llm_model
        for metric, quantity in (
            ("wasted_prompt_tokens", prompt),
            ("wasted_completion_tokens", completion),
        ):
            await self._append(
                ev.Usage(call_sid=self.call_sid, provider=model, metric=metric, quantity=quantity)
            )
        log.info(
            "preemptive reply of turn %s of %s discarded (%s)", self.turn_id, self.call_sid, reason
        )

    def _wasted(self) -> tuple[int, int]:
        """Tokens of the dropped request: as reported, or estimated when it was cut short."""
        if self.held_usage:
            return (
                sum(u.prompt_tokens for u in self.held_usage),
                sum(u.completion_tokens for u in self.held_usage),
            )
        return -(-self.prompt_chars // CHARS_PER_TOKEN), self.deltas

    async def _resolve(
        self, used: bool, final_text: str, reason: str, *, prompt: int = 0, completion: int = 0
    ) -> None:
        assert self.preempt is not None
        await self._append(
            ev.PreemptResolved(
                call_sid=self.call_sid,
                turn_id=self.turn_id,
                used=used,
                preempt_text=self.preempt.text,
                final_text=final_text,
                reason=reason,
                wasted_prompt_tokens=prompt,
                wasted_completion_tokens=completion,
            )
        )
        self.deps.metrics.preempt_outcome(used)

    @staticmethod
    async def _cancel(task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # ---- effects, held while unconfirmed ---------------------------------------------------
    async def _say(self, text: str) -> None:
        if self.confirmed:
            await super()._say(text)
            return
        self._mark("first_speakable")
        self.held_text.append(text)

    async def _flush_marks(self) -> None:
        if self.confirmed:
            await super()._flush_marks()

    async def _usage(self, usage: TokenUsage) -> None:
        if self.confirmed:
            await super()._usage(usage)
        else:
            self.held_usage.append(usage)

    async def _run_tools(self, calls: Any) -> list[ev.ToolResult]:
        await self.gate.wait()  # a discarded reply is cancelled here: its tools never run
        return await super()._run_tools(calls)
