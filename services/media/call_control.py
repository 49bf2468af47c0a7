"""How a call ends: silence (reprompt, then goodbye), maximum duration, keypresses, and the
end/transfer intents of the agent's tools. The stream closes only after the last sentence
was heard (its mark came back)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from services.media.agent_speech.output import AgentOutput
from services.media.call_context import CallContext
from shared.bus.waiting import wait_event
from shared.contract import events as ev

log = logging.getLogger(__name__)

POLL_S = 0.25
"""How often timers are checked (they are seconds-long; this is not on any audio path)."""
FAREWELL_TIMEOUT_S = 20.0
"""Close anyway if the last sentence's mark never comes back."""
MAX_DURATION = "maximum call duration"
"""The intent reason of the max-duration hang-up (recorded as end reason `max-duration`)."""


class CallControl:
    """Timers and intents for one call."""

    def __init__(
        self, ctx: CallContext, agent: AgentOutput, close: Callable[[str], Awaitable[None]]
    ) -> None:
        self.ctx = ctx
        self.agent = agent
        self.close = close
        self.started = time.monotonic()
        self.last_caller_activity = time.monotonic()
        self.reprompted = False
        self.ending = False

    def caller_active(self) -> None:
        """The caller spoke or pressed a key: silence timers restart."""
        self.last_caller_activity = time.monotonic()
        self.reprompted = False

    async def on_dtmf(self, digit: str) -> None:
        """Act on a keypress (e.g. 0 = a person)."""
        self.caller_active()
        await self.ctx.append(ev.Dtmf(call_sid=self.ctx.call_sid, digit=digit))
        s = self.ctx.settings
        if digit == self.ctx.knobs.dtmf_transfer_digit and not self.ending:
            target = self.ctx.started.transfer_number
            if target:
                await self._end_with(s.transfer_text, "transfer", target, "caller pressed a key")
            else:
                await self.agent.say(s.no_transfer_text)

    async def _end_with(self, text: str, kind: str, target: str = "", reason: str = "") -> None:
        self.ending = True
        if self.agent.speaking:
            await self.agent.barge_in(f"{reason or kind}", time.time())
        turn_id = await self.agent.say(text)
        await self.ctx.append(
            ev.CallIntent(
                call_sid=self.ctx.call_sid,
                kind="transfer" if kind == "transfer" else "end",
                target=target,
                reason=reason,
                turn_id=turn_id,
            )
        )

    async def run(self) -> None:
        """Watch silence and duration; carry out an intent once its last words were heard."""
        while True:
            await wait_event(self.agent.changed, POLL_S)
            self.agent.changed.clear()
            if await self.tick(time.monotonic()):
                return

    async def tick(self, now: float) -> bool:
        """One look at the timers and the intent; True once the stream was closed."""
        s = self.ctx.settings
        intent = self.agent.intent
        if intent is not None:
            self.ending = True
            if intent.turn_id in self.agent.turns_done and not self.agent.speaking:
                await self.close(_reason(intent))
                return True
            if now - self.agent.idle_since > FAREWELL_TIMEOUT_S and not self.agent.speaking:
                await self.close(_reason(intent))
                return True
            return False
        if self.ending:
            return False
        if now - self.started >= min(self.ctx.started.max_call_s, s.max_call_s):
            await self._end_with(s.max_duration_text, "end", reason=MAX_DURATION)
            return False
        if self.agent.speaking:
            return False
        quiet = now - max(self.last_caller_activity, self.agent.idle_since)
        knobs = self.ctx.knobs
        if not self.reprompted and quiet >= knobs.silence_reprompt_s:
            self.reprompted = True
            self.last_caller_activity = now
            await self.agent.say(s.silence_reprompt_text)
        elif self.reprompted and quiet >= knobs.silence_hangup_s:
            await self._end_with(s.silence_goodbye_text, "end", reason="caller silent")
        return False


def _reason(intent: ev.CallIntent) -> str:
    """The call's end reason for the intent carried out."""
    if intent.kind == "transfer":
        return "transfer"
    return "max-duration" if intent.reason == MAX_DURATION else "agent-ended"
