"""A short filler ("One moment.") when the reply to a caller's turn is slow (issue 17).

Media owns the timer, not the brain: only media knows the three things the rule needs at the
moment it fires: that the caller's turn was confirmed (media writes `turn.requested` itself;
a preemptive request is not a confirmation), whether anything of the reply is playing or was
played (the segment ledger and Twilio's marks), and whether the caller is speaking. The brain
knows only that its LLM is slow, not whether audio is already playing.

The rule, per confirmed caller turn: when the agent has been quiet `delay` (the tenant's
`filler_delay_s`, default 1.2 s) since the turn was confirmed, nothing of the reply has been
handed to TTS, and the caller is not speaking, one phrase of the tenant's filler list is played
from the phrase cache, as segment (turn, -1). A tool call of the turn still pending with
the agent quiet `delay` counts too ("Let me check." was said, then the tool is slow). A second
filler (turn, -2) may follow after `filler_repeat_s` more quiet; never more than
`filler_max_per_turn`. A turn that is answered, interrupted, superseded, or whose call is
ending gets none. The audio is made when the call starts (REST synthesis of the phrases not yet
in the cache, off the call's TTS socket), so a filler costs no TTS round trip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from services.media.agent_speech.greeting_cache import GreetingCache
from services.media.agent_speech.output import AgentOutput
from services.media.agent_speech.tts_factory import make_rest_synth
from services.media.agent_speech.tts_protocol import UnknownTtsProvider, split_voice
from services.media.agent_speech.tts_rest_fallback import PROVIDER_ERRORS, RestSynth
from services.media.call_context import CallContext
from shared.bus.waiting import wait_event
from shared.contract import events as ev
from shared.contract.conversation_knobs import ConversationKnobs

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often an armed timer looks again while it cannot fire yet (the agent or caller talks)."""

DEFAULT_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("One moment.", "Let me check that for you."),
    "es": ("Un momento.", "Déjeme comprobarlo."),
    "fr": ("Un instant.", "Je vérifie cela pour vous."),
    "de": ("Einen Moment.", "Ich sehe kurz nach."),
    "it": ("Un momento.", "Controllo subito."),
    "pt": ("Um momento.", "Vou verificar para si."),
}
"""Fillers per language (the primary subtag of the tenant's `language`); a language not
listed gets none unless the tenant writes its own `filler_phrases`."""


def phrases_for(knobs: ConversationKnobs, language: str) -> list[str]:
    """The tenant's fillers: its own list (may be empty: no fillers), else its language's."""
    if knobs.filler_phrases is not None:
        return [p.strip() for p in knobs.filler_phrases if p.strip()]
    primary = language.split("-", 1)[0].split("_", 1)[0].lower()
    return list(DEFAULT_PHRASES.get(primary, ()))


@dataclass
class _Turn:
    """The confirmed caller turn the timer watches."""

    turn_id: int
    confirmed_at: float  # monotonic
    spoken: int = 0  # fillers spoken for it
    closed: bool = False  # nothing more to do for it


class Filler:
    """The filler timer of one call (cascade pipeline)."""

    def __init__(
        self,
        ctx: CallContext,
        agent: AgentOutput,
        caller_busy: Callable[[], bool],
        greetings: GreetingCache | None,
    ) -> None:
        self.ctx = ctx
        self.agent = agent
        self.caller_busy = caller_busy
        self.greetings = greetings
        s = ctx.settings
        self.delay_s = ctx.knobs.filler_delay_s
        self.repeat_s = s.filler_repeat_s
        self.max_per_turn = s.filler_max_per_turn
        self.phrases = phrases_for(ctx.started.conversation, ctx.started.language)
        self.audio: dict[str, bytes] = {}  # phrase -> µ-law, once cached
        self.spoken = 0  # fillers spoken in this call (picks the next phrase)
        self._turn: _Turn | None = None
        self._wake = asyncio.Event()
        if self.enabled:
            agent.caller_turn_hooks.append(self.turn_confirmed)

    @property
    def enabled(self) -> bool:
        """Fillers are on for this call (platform switch, a phrase, a cache to play from)."""
        s = self.ctx.settings
        return bool(s.filler_enabled and self.max_per_turn > 0 and self.phrases and self.greetings)

    def turn_confirmed(self, turn_id: int) -> None:
        """`turn.requested` of a caller turn was written: arm the timer for it."""
        self._turn = _Turn(turn_id, time.monotonic())
        self._wake.set()

    # ---- the phrase cache ----------------------------------------------------------------
    async def prewarm(self, synth: RestSynth) -> int:
        """Load each phrase's audio from the cache, synthesizing (REST, off the call's socket)
        and caching those not there yet; returns how many were synthesized now."""
        made = 0
        if not self.enabled or self.greetings is None:
            return made
        voice = self.agent.cache_voice
        for phrase in self.phrases:
            try:
                audio = await self.greetings.get(voice, phrase)
                if audio is None:
                    audio = b"".join([chunk async for chunk in synth.synthesize(phrase)])
                    if audio:
                        await self.greetings.put(voice, phrase, audio)
                        self.agent.characters_synthesized += len(phrase)  # billed as TTS text
                        made += 1
            except (*PROVIDER_ERRORS, RedisError) as exc:  # that phrase stays unused
                log.warning("filler %r not cached: %s", phrase, exc)
                continue
            if audio:
                self.audio[phrase] = audio
        return made

    # ---- the timer -----------------------------------------------------------------------
    async def run(self) -> None:
        """Cache the phrases, then watch each confirmed turn until it is answered; speak a
        filler when one is due. Runs for the whole call (started only when `enabled`)."""
        provider, voice = split_voice(self.ctx.started.voice)
        try:
            synth = make_rest_synth(self.ctx.settings, provider, voice, self.ctx.deps.clients)
        except UnknownTtsProvider as exc:  # a filler is optional: never the end of a call
            log.warning("fillers from the cache only: %s", exc)
        else:
            try:
                await self.prewarm(synth)
            finally:
                await synth.aclose()
        while True:
            await wait_event(self._wake, self._timeout(time.monotonic()))
            self._wake.clear()
            await self.check(time.monotonic())

    def _timeout(self, now: float) -> float | None:
        turn = self._turn
        if turn is None or turn.closed:
            return None
        due = self._due(turn)
        return POLL_S if due is None else max(0.0, min(due - now, POLL_S))

    def _due(self, turn: _Turn) -> float | None:
        """When the next filler of `turn` is due if nothing changes (None: not while the
        agent talks)."""
        if self.agent.speaking:
            return None
        quiet_since = max(turn.confirmed_at, self.agent.idle_since)
        return quiet_since + (self.delay_s if turn.spoken == 0 else self.repeat_s)

    def _reason(self, turn: _Turn) -> str | None:
        """Why `turn` may get a filler now, or None; closes a turn that never will."""
        agent = self.agent
        tid = turn.turn_id
        if (
            turn.spoken >= self.max_per_turn
            or agent.intent is not None
            or agent.stale(tid)
            or tid in agent.turns_done
        ):
            turn.closed = True
            return None
        if agent.tool_pending(tid):
            return "tool_pending"
        return None if tid in agent.reply_turns else "slow_reply"

    async def check(self, now: float) -> ev.AgentFiller | None:
        """Speak a filler if one is due now; the `agent.filler` logged, or None."""
        turn = self._turn
        if turn is None or turn.closed:
            return None
        reason = self._reason(turn)
        due = self._due(turn)
        if reason is None or due is None or now < due or self.caller_busy():
            return None
        phrase = self._phrase()
        if phrase is None:
            self.ctx.deps.metrics.fillers.labels("uncached").inc()
            turn.closed = True
            return None
        waited_s = now - (due - (self.delay_s if turn.spoken == 0 else self.repeat_s))
        filler = ev.AgentFiller(
            call_sid=self.ctx.call_sid,
            turn_id=turn.turn_id,
            seq=-(turn.spoken + 1),
            text=phrase,
            reason="tool_pending" if reason == "tool_pending" else "slow_reply",
            waited_ms=round(waited_s * 1000),
        )
        if not await self.agent.speak_filler(filler, self.audio[phrase]):
            return None
        turn.spoken += 1
        self.spoken += 1
        self.ctx.deps.metrics.fillers.labels(reason).inc()
        log.info("filler %r for turn %d (%s)", phrase, turn.turn_id, reason)
        return filler

    def _phrase(self) -> str | None:
        """The next cached phrase in turn (the list rotates over the call)."""
        ready = [p for p in self.phrases if p in self.audio]
        return ready[self.spoken % len(ready)] if ready else None
