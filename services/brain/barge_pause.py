"""A reply the caller talked over is held, not dropped, until media's verdict (issue 17).

Media stops the agent on the caller's voice onset, before it knows what was said. The verdict
comes later: `caller.false_interrupt` ("mhm", a cough: media says the cut sentences again and
the reply goes on) or the caller's new turn (the runner then cancels the reply). Until then
the reply's new text is held here and its tool calls wait, so a false interrupt loses nothing
the LLM was still writing; `wait_s` bounds the hold (then the reply is dropped as before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class BargePause:
    """One turn's hold on its reply while a barge-in waits for its verdict."""

    def __init__(self, wait_s: float, on_timeout: Callable[[], None]) -> None:
        self.wait_s = wait_s
        self._on_timeout = on_timeout
        self.open = asyncio.Event()  # set: the reply may speak and act
        self.open.set()
        self._held: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def paused(self) -> bool:
        """A barge-in of this turn has no verdict yet."""
        return not self.open.is_set()

    def barged(self) -> None:
        """Media cut the reply: hold it, for `wait_s` at most."""
        if self.paused:
            return
        self.open.clear()
        self._timer = asyncio.get_running_loop().call_later(self.wait_s, self._on_timeout)

    def undone(self) -> None:
        """The barge-in was false: the reply goes on."""
        self.close()
        self.open.set()

    def hold(self, text: str) -> bool:
        """Keep `text` while paused (True); False when it may be written now."""
        if self.paused:
            self._held.append(text)
        return self.paused

    def take(self) -> list[str]:
        """The text held since the barge-in (once the pause is over)."""
        held, self._held = self._held, []
        return held

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
