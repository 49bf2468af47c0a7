"""The agent's voice: agent text from the call log -> TTS -> Twilio, with a mark per segment.

Only text of live turns is spoken (not of a turn the caller interrupted or a turn older than
the caller's latest utterance); a barge-in clears Twilio's buffer and the TTS queue and logs
exactly what the caller had heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.media.agent_speech.greeting_cache import GreetingCache
from services.media.agent_speech.segment_ledger import ClearResult, Segment, SegmentLedger
from services.media.agent_speech.sent_audio import SentAudio, skipped_ms
from services.media.agent_speech.tts_protocol import TtsCleared, TtsFlushed, TtsStream
from services.media.call_context import CallContext
from services.media.twilio.link import TwilioLink
from shared.bus.mux import Subscription
from shared.contract import events as ev

log = logging.getLogger(__name__)

CLEARED_WAIT_S = 2.0
"""Longest we drop TTS audio waiting for the provider to confirm a clear."""


class AgentOutput:
    """Speaks for one call and knows whether the agent is talking right now."""

    def __init__(
        self,
        ctx: CallContext,
        link: TwilioLink,
        tts: TtsStream,
        greetings: GreetingCache | None,
    ) -> None:
        self.ctx = ctx
        self.link = link
        self.tts = tts
        self.greetings = greetings
        self.ledger = SegmentLedger()
        self.idle = asyncio.Event()
        self.idle.set()
        self.idle_since = time.monotonic()
        self.turns_done: set[int] = set()
        self.intent: ev.CallIntent | None = None
        self.changed = asyncio.Event()  # something the call controller waits on happened
        self._handled: set[tuple[int, int]] = set()
        self._interrupted: set[int] = set()
        self._dropping_until: float = 0.0
        self._greeting_audio: bytearray | None = None
        self._cached_marks: set[str] = set()
        self._phrase_audio: dict[tuple[int, int], bytearray] = {}  # short segments, for the cache
        self.characters_synthesized = 0  # text sent to TTS (a cached greeting costs nothing)
        self.last_cut: ClearResult | None = None  # what the latest barge-in cut
        self.sent_audio = SentAudio()  # what a false interrupt's resumption plays again
        self._resume_audio: dict[str, bytes] = {}  # cut segments' unheard audio, for respeak
        self.resumed_from_ms = 0  # the latest respeak: heard ms skipped in its first segment
        self.tools_pending: dict[int, set[str]] = {}  # turn -> tool calls without a result
        self.reply_turns: set[int] = set()  # turns with reply text handed to TTS
        self.caller_turn_hooks: list[Callable[[int], None]] = []  # the filler's timer
        self._paused: dict[int, list[tuple[int, str]]] = {}  # filler cut: reply text held
        self._after_cut: dict[int, list[tuple[int, str]]] = {}  # text of a cut turn, for respeak

    @property
    def speaking(self) -> bool:
        """Audio is being made or is still queued at Twilio."""
        return self.ledger.busy

    def _update_idle(self) -> None:
        if self.ledger.busy:
            self.idle.clear()
        elif not self.idle.is_set():
            self.idle.set()
            self.idle_since = time.monotonic()
            self.changed.set()

    # ---- greeting ------------------------------------------------------------------------
    async def greet_from_cache(self, already_greeted: bool) -> bool:
        """Send the cached greeting audio now (before any provider socket is open); False
        when there is nothing to greet with or it is not cached yet."""
        text = self.ctx.started.greeting
        if already_greeted or not text or self.greetings is None:
            return already_greeted or not text
        cached = await self.greetings.get(self._voice, text)
        if cached is None:
            return False
        self._handled.add((0, 0))
        segment = await self._send_cached(0, 0, text, cached)
        await self._log_greeting(text)
        await self._segment_done(self.ledger.flushed() or segment)
        return True

    async def _send_cached(self, turn_id: int, seq: int, text: str, audio: bytes) -> Segment:
        """Play cached audio as the segment (turn_id, seq) now (nothing may be queued)."""
        segment = self.ledger.queue(turn_id, seq, text)
        self._cached_marks.add(segment.mark)
        self.idle.clear()
        self.ledger.audio(len(audio))
        sent_at = time.time()
        await self._send_audio(segment.mark, audio)
        if segment.filler:  # no stage of the reply: its latency is the reply's own
            return segment
        if turn_id:  # a reply's turn row has every stage: the cache is its "TTS"
            await self.ctx.latency(turn_id, "tts_first_byte", sent_at)
        await self._first_audio_sent(turn_id, sent_at)
        return segment

    def _cacheable(self, text: str) -> bool:
        """A reply segment short enough for the phrase cache (`PHRASE_CACHE_MAX_CHARS`): cached
        like the greeting, so when it opens a reply again it plays with no TTS round trip."""
        return self.greetings is not None and len(text) <= self.ctx.settings.phrase_cache_max_chars

    async def _speak_cached(self, turn_id: int, seq: int, text: str) -> bool:
        """Open a reply with a cached short phrase, if nothing is playing; False otherwise."""
        if self.greetings is None or not self._cacheable(text) or self.ledger.busy:
            return False
        cached = await self.greetings.get(self._voice, text)
        if cached is None or self.ledger.busy:  # something was queued while we looked
            return False
        segment = await self._send_cached(turn_id, seq, text, cached)
        await self._segment_done(self.ledger.flushed() or segment)
        return True

    @property
    def _voice(self) -> str:
        return self.ctx.started.voice or self.ctx.settings.tts_model

    @property
    def cache_voice(self) -> str:
        """The voice the phrase cache keys this call's audio by."""
        return self._voice

    async def greet_with_tts(self) -> None:
        """Synthesize the greeting (the TTS socket must be open); its audio is cached."""
        text = self.ctx.started.greeting
        self._handled.add((0, 0))
        self._greeting_audio = bytearray()
        await self._speak(0, 0, text)
        await self._log_greeting(text)

    async def _log_greeting(self, text: str) -> None:
        sid = self.ctx.call_sid
        await self.ctx.append(ev.AgentText(call_sid=sid, turn_id=0, seq=0, text=text))
        await self.ctx.append(ev.AgentTurnDone(call_sid=sid, turn_id=0, chunks=1))

    # ---- resuming on another replica ------------------------------------------------------
    async def resume(self, history: list[tuple[str, ev.Event]]) -> None:
        """The call moved here: note finished turns, intents and barge-ins, and speak the text
        of the latest agent turn whose audio the caller never heard (only an echoed mark
        counts as heard: a segment sent but not echoed is spoken again)."""
        heard: set[tuple[int, int]] = set()
        texts: list[ev.AgentText] = []
        for _, event in history:
            if isinstance(event, ev.SegmentPlayed) and not event.cleared:
                heard.add((event.turn_id, event.seq))
            elif isinstance(event, ev.BargeIn) and event.turn_id >= 0 and not event.filler_only:
                self._interrupted.add(event.turn_id)
            elif isinstance(event, ev.AgentTurnDone):
                self.turns_done.add(event.turn_id)
            elif isinstance(event, ev.CallIntent) and self.intent is None:
                self.intent = event
            elif isinstance(event, ev.AgentText) and event.text.strip():
                texts.append(event)
        if not texts:
            return
        last_turn = max(e.turn_id for e in texts)
        if self._stale(last_turn):
            return
        for event in texts:
            key = (event.turn_id, event.seq)
            if event.turn_id == last_turn and key not in heard and key not in self._handled:
                self._handled.add(key)
                await self._speak(event.turn_id, event.seq, event.text)

    # ---- log -> TTS ----------------------------------------------------------------------
    _FOLLOWED = (ev.AgentText, ev.AgentTurnDone, ev.CallIntent, ev.ToolRequested, ev.ToolResult)
    FOLLOWS = frozenset(ev.type_of(t) for t in _FOLLOWED)
    """The event types `follow` acts on (its subscription asks for these only)."""

    async def follow(self, sub: Subscription) -> None:
        """Speak agent text as the brain writes it; note intents and finished turns."""
        async for _, event in sub:
            if isinstance(event, ev.AgentText):
                key = (event.turn_id, event.seq)
                if key in self._handled or not event.text.strip():
                    continue
                if event.turn_id in self._interrupted and not self._superseded(event.turn_id):
                    # written as the barge-in happened: said if the verdict undoes it
                    self._handled.add(key)
                    self._after_cut.setdefault(event.turn_id, []).append((event.seq, event.text))
                    continue
                if self._stale(event.turn_id):
                    continue
                self._handled.add(key)
                held = self._paused.get(event.turn_id)
                if held is not None:  # the caller talks over a filler: wait for the verdict
                    held.append((event.seq, event.text))
                    continue
                await self._speak(event.turn_id, event.seq, event.text)
            elif isinstance(event, ev.AgentTurnDone):
                self.turns_done.add(event.turn_id)
                self.changed.set()
            elif isinstance(event, ev.CallIntent) and self.intent is None:
                self.intent = event
                self.changed.set()
            elif isinstance(event, ev.ToolRequested):
                self.tools_pending.setdefault(event.turn_id, set()).add(event.tool_call_id)
            elif isinstance(event, ev.ToolResult):
                self.tools_pending.get(event.turn_id, set()).discard(event.tool_call_id)

    # ---- what the filler timer asks (services/media/agent_speech/filler.py) ---------------
    def caller_turn_confirmed(self, turn_id: int) -> None:
        """The caller's turn was confirmed (`turn.requested` written): a reply is owed."""
        for hook in self.caller_turn_hooks:
            hook(turn_id)

    def stale(self, turn_id: int) -> bool:
        """Nothing of `turn_id` will be spoken (interrupted, or a newer caller turn)."""
        return self._stale(turn_id)

    def tool_pending(self, turn_id: int) -> bool:
        """A tool call of `turn_id` has no result yet."""
        return bool(self.tools_pending.get(turn_id))

    async def speak_filler(self, filler: ev.AgentFiller, audio: bytes) -> bool:
        """Play a cached filler as segment (turn_id, seq < 0) now, then log `filler`; False
        when something is playing (the reply came first)."""
        if self.ledger.busy or filler.seq >= 0:
            return False
        self._handled.add((filler.turn_id, filler.seq))
        segment = await self._send_cached(filler.turn_id, filler.seq, filler.text, audio)
        await self.ctx.append(filler)
        await self._segment_done(self.ledger.flushed() or segment)
        return True

    def _stale(self, turn_id: int) -> bool:
        return turn_id in self._interrupted or self._superseded(turn_id)

    def _superseded(self, turn_id: int) -> bool:
        return 0 < turn_id < self.ctx.latest_caller_turn

    async def _speak(self, turn_id: int, seq: int, text: str) -> None:
        if seq >= 0:
            self.reply_turns.add(turn_id)
        if turn_id and await self._speak_cached(turn_id, seq, text):
            return
        if turn_id and self._cacheable(text):
            self._phrase_audio[(turn_id, seq)] = bytearray()
        self.ledger.queue(turn_id, seq, text)
        if seq >= 0:  # a filler spoken again after a false interrupt is no reply stage
            self.ctx.stage_mark(turn_id, "tts_request", time.time())
            self.ctx.tts_requests.sent(
                (turn_id, seq), {"turn.id": turn_id, "characters": len(text)}
            )
        self.idle.clear()
        self.characters_synthesized += len(text)
        await self.tts.speak(text)

    async def say(self, text: str) -> int:
        """An agent-initiated turn (reprompt, goodbye): logged like any reply; returns its id."""
        turn_id = self.ctx.next_turn()
        await self.ctx.append(
            ev.AgentText(call_sid=self.ctx.call_sid, turn_id=turn_id, seq=0, text=text)
        )
        await self.ctx.append(
            ev.AgentTurnDone(call_sid=self.ctx.call_sid, turn_id=turn_id, chunks=1)
        )
        return turn_id

    # ---- TTS -> Twilio -------------------------------------------------------------------
    async def pump(self) -> None:
        """Forward TTS audio to Twilio; a mark after each segment."""
        metric = self.ctx.deps.outbound_forward_s
        async for item in self.tts.events():
            if isinstance(item, bytes):
                received = time.perf_counter()
                if self._dropping_until and time.monotonic() < self._dropping_until:
                    continue  # audio of a cleared segment still in flight
                segment, first = self.ledger.audio(len(item))
                if segment is None:
                    continue
                first_byte_at = time.time() if first else 0.0
                await self._send_audio(segment.mark, item)  # audio first; bookkeeping after
                if metric is not None:
                    metric.observe(time.perf_counter() - received)
                if first:
                    self.ctx.tts_requests.answered((segment.turn_id, segment.seq))
                    sent_at = time.time()
                    await self.ctx.latency(segment.turn_id, "tts_first_byte", first_byte_at)
                    await self._first_audio_sent(segment.turn_id, sent_at)
                if self._greeting_audio is not None and (segment.turn_id, segment.seq) == (0, 0):
                    self._greeting_audio.extend(item)
                phrase = self._phrase_audio.get((segment.turn_id, segment.seq))
                if phrase is not None:
                    phrase.extend(item)
            elif isinstance(item, TtsFlushed):
                done = self.ledger.flushed()
                if done is not None:
                    await self._segment_done(done)
            elif isinstance(item, TtsCleared):
                self._dropping_until = 0.0
        raise ConnectionError("TTS socket closed")

    async def _send_audio(self, mark: str, audio: bytes) -> None:
        """Audio to Twilio; it plays in real time after what is queued there, so the time its
        buffer runs dry is known (a barge-in then knows how much of each segment was heard)."""
        await self.link.send_media(audio)
        self.sent_audio.sent(mark, audio, time.monotonic())

    async def _segment_done(self, segment: Segment) -> None:
        await self.ctx.append(
            ev.SegmentSent(
                call_sid=self.ctx.call_sid,
                turn_id=segment.turn_id,
                seq=segment.seq,
                mark=segment.mark,
                text=segment.text,
                audio_bytes=segment.audio_bytes,
                cached=segment.mark in self._cached_marks,
                filler=segment.filler,
            )
        )
        await self.link.send_mark(segment.mark)
        if self._greeting_audio is not None and (segment.turn_id, segment.seq) == (0, 0):
            audio, self._greeting_audio = bytes(self._greeting_audio), None
            if self.greetings is not None:
                await self.greetings.put(self._voice, segment.text, audio)
        phrase = self._phrase_audio.pop((segment.turn_id, segment.seq), None)
        if phrase and self.greetings is not None:
            await self.greetings.put(self._voice, segment.text, bytes(phrase))

    async def _first_audio_sent(self, turn_id: int, at: float | None = None) -> None:
        now = time.time() if at is None else at
        await self.ctx.latency(turn_id, "first_audio_sent", now)
        if turn_id == 0:
            log.info(
                "greeting first frame sent %.1f ms after start",
                (now - self.ctx.start_received_at) * 1000,
                extra={"greeting_ms": round((now - self.ctx.start_received_at) * 1000, 1)},
            )

    async def on_mark(self, name: str) -> None:
        """Twilio echoed a mark: that segment was heard (or dropped by a clear)."""
        segment = self.ledger.played(name)
        if segment is not None and not segment.cleared:
            self.sent_audio.played(name)
        # Before any await: the silence timer starts at this echo. Updating after the log write
        # let the call controller see "not speaking" with the idle time of the previous turn and
        # reprompt right after the agent finished.
        self._update_idle()
        if segment is not None:
            await self.ctx.append(
                ev.SegmentPlayed(
                    call_sid=self.ctx.call_sid,
                    turn_id=segment.turn_id,
                    seq=segment.seq,
                    mark=name,
                    cleared=segment.cleared,
                )
            )

    # ---- barge-in ------------------------------------------------------------------------
    async def barge_in(
        self, trigger: str, trigger_at: float, trigger_audio_ms: int | None = None
    ) -> bool:
        """Stop talking now; False if the agent was not talking."""
        if not self.ledger.busy:
            return False
        await self.link.send_clear()
        cut = self.ledger.clear()
        self._phrase_audio.clear()  # cut short: none of it is a whole phrase to cache
        self.last_cut = cut
        self._resume_audio = self.sent_audio.cut(cut, time.monotonic())
        self._dropping_until = time.monotonic() + CLEARED_WAIT_S
        # Talking over a filler cuts no reply: the reply still comes after a "mhm", and the
        # caller's new turn, if it is one, supersedes it (issue 17).
        filler_only = all(seg.filler for seg in (*cut.cleared, *cut.dropped))
        if cut.turn_id is not None and not filler_only:
            self._interrupted.add(cut.turn_id)
        elif cut.turn_id is not None:  # its reply waits: a "mhm" lets it out (`respeak`)
            self._paused.setdefault(cut.turn_id, [])
        await self.tts.clear()
        await self.ctx.append(
            ev.BargeIn(
                call_sid=self.ctx.call_sid,
                turn_id=cut.turn_id if cut.turn_id is not None else -1,
                trigger=trigger,
                trigger_at=trigger_at,
                heard_text=cut.heard_text,
                cleared_marks=cut.cleared_marks,
                trigger_audio_ms=trigger_audio_ms,
                filler_only=filler_only,
            )
        )
        self._update_idle()
        return True

    async def _resend(self, segment: Segment, audio: bytes) -> None:
        """Play audio kept from a cut segment again as that segment (nothing may be queued)."""
        again = self.ledger.queue(segment.turn_id, segment.seq, segment.text)
        self._cached_marks.add(again.mark)  # no TTS: it costs nothing
        self.idle.clear()
        self.ledger.audio(len(audio))
        await self._send_audio(again.mark, audio)
        await self._segment_done(self.ledger.flushed() or again)

    async def respeak(self, turn_id: int) -> int:
        """A barge-in on `turn_id` was false (the caller only said "mhm"): speak again the
        segments it cut, whole, in order (a filler is not said again: the reply text held
        since is spoken instead); returns how many. Nothing when the turn is no longer the
        live one, the agent says something else, or a cut mark has not come back yet."""
        self.resumed_from_ms = 0
        held = self._paused.pop(turn_id, None)
        if held is not None:  # only a filler was cut: say the reply text that came meanwhile
            self.last_cut = None
            if self._stale(turn_id):
                return 0
            for seq, text in held:
                await self._speak(turn_id, seq, text)
            return len(held)
        cut, self.last_cut = self.last_cut, None
        if cut is None or cut.turn_id != turn_id or self.ledger.busy:
            return 0
        if 0 < turn_id < self.ctx.latest_caller_turn:
            return 0
        segments = sorted((*cut.cleared, *cut.dropped), key=lambda seg: seg.seq)
        segments = [seg for seg in segments if seg.turn_id == turn_id and not seg.filler]
        if not segments or any(self.ledger.awaiting_echo(seg.mark) for seg in segments):
            return 0  # a cut filler is not said again: the reply it stood in for follows
        self._interrupted.discard(turn_id)
        resume, self._resume_audio = self._resume_audio, {}
        self.resumed_from_ms = skipped_ms(segments, resume)
        for segment in segments:  # what was sent goes on from where it was cut; the rest anew
            audio = resume.get(segment.mark)
            if audio:
                await self._resend(segment, audio)
            else:
                await self._speak(segment.turn_id, segment.seq, segment.text)
        for seq, text in self._after_cut.pop(turn_id, []):  # came after the cut
            await self._speak(turn_id, seq, text)
        return len(segments)
