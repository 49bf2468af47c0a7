"""The caller's side of a call: audio -> STT (reconnecting without losing words), transcripts
and turns into the log, and barge-in decisions while the agent is talking."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from deepgram.core.api_error import ApiError
from websockets.exceptions import WebSocketException

from services.media.agent_speech.output import AgentOutput
from services.media.call_context import CallContext
from services.media.caller.backlog import FRAME_MS, AudioBacklog
from services.media.caller.barge_in import (
    BargeInDetector,
    BargeInOptions,
    Decision,
    FalseInterrupt,
)
from services.media.caller.end_of_turn import EndOfTurnOptions, TurnEnd
from services.media.caller.over_talk import OverTalk
from services.media.caller.quiet_audio import QuietBatching
from services.media.caller.speech_gate import SpeechGate, SpeechGateOptions
from services.media.caller.stt_deepgram import (
    DeepgramStt,
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from services.media.caller.stt_feed import SttFeed
from services.media.preemption import PreemptTrigger
from shared.contract import events as ev
from shared.contract import keys
from shared.runtime.telemetry import tracer
from shared.speech.vad import SileroVad, VadModel

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

MAX_STT_RETRIES = 5
LEAD_IN_MS = 1000
"""Unfinalized audio older than this is forgotten while nobody is talking."""
HELD_VOICE_SLACK_MS = 64
"""Voice that starts this soon after a held utterance's end is that utterance's own tail."""


class CallerInput:
    """Feeds STT, writes transcripts and turns, and decides barge-ins."""

    def __init__(
        self,
        ctx: CallContext,
        agent: AgentOutput,
        on_activity: Callable[[], None],
        vad_model: VadModel | None,
        barge_options: BargeInOptions,
    ) -> None:
        self.ctx = ctx
        self.agent = agent
        self.on_activity = on_activity
        self.backlog = AudioBacklog()
        settings = ctx.settings
        self.detector = BargeInDetector(barge_options)
        self.vad = SileroVad(vad_model) if vad_model is not None else None
        gate = SpeechGateOptions(
            min_level_dbfs=settings.barge_in_gate_min_level_dbfs,
            over_echo_db=settings.barge_in_gate_over_echo_db,
        )
        self.over_talk = OverTalk(self.detector, self.vad, SpeechGate(gate))
        self.interrupted_turn = -1  # the turn the latest barge-in cut
        self.turn_end = TurnEnd(
            EndOfTurnOptions(
                short_ms=settings.end_of_turn_short_ms,
                hold_ms=settings.end_of_turn_hold_ms if settings.end_of_turn_dynamic else 0,
            )
        )
        self.utterance: list[str] = []
        self.hearing = False  # an utterance is in progress (onset or interim seen)
        self.closing = False
        self._stt: DeepgramStt | None = None  # the open STT socket
        self._stt_done = asyncio.Event()  # the socket's events ended after `close`
        self.feed = SttFeed(
            self.backlog,
            ctx.deps.inbound_forward_s,
            QuietBatching(
                frames=settings.stt_quiet_batch_frames,
                after_ms=max(
                    1200, settings.stt_utterance_end_ms + 200, settings.stt_endpointing_ms + 200
                ),
                settled_after_ms=max(400, settings.stt_endpointing_ms + 100),
            ),
        )
        self._barging: asyncio.Task[bool] | None = None
        self.preempt = (  # issue 17 hook: preemptive replies (services/media/preemption.py)
            PreemptTrigger(ctx, vad_model, settings.preempt_silence_ms)
            if vad_model is not None and settings.preempt_enabled
            else None
        )

    @property
    def frames_sent(self) -> int:
        """Frames written to STT sockets, resends included (billed audio)."""
        return self.feed.frames_sent

    # ---- audio in ------------------------------------------------------------------------
    async def on_frame(self, frame: bytes) -> None:
        """One 20 ms frame from Twilio (hot path: keep it cheap)."""
        index = await self.feed.push(frame, settled=not self.hearing)
        self.ctx.frame_arrived(time.time())
        audio_ms = (index + 1) * FRAME_MS
        speaking = self.agent.speaking
        detector = self.detector
        if speaking or detector.confirming or speaking != detector.agent_is_speaking:
            for decision in self.over_talk.frame(frame, index, speaking):
                await self._decide(decision, "vad")
        elif not self.hearing and index % 50 == 0:
            self.backlog.finalized_until(audio_ms - LEAD_IN_MS)
        if not speaking and self.preempt is not None:
            await self.preempt.frame(frame, index)
        held = self.turn_end.held_end_ms
        if held is not None:  # said "my number is": more words, or quiet, end it
            spoke, stopped = (
                self.preempt.voice_after(held + HELD_VOICE_SLACK_MS, index)
                if self.preempt is not None
                else (False, None)
            )
            if self.turn_end.expired(audio_ms, spoke, stopped):
                await self._end_utterance(held, time.time())

    async def _decide(self, interrupt: Decision | None, source: str) -> None:
        if isinstance(interrupt, FalseInterrupt):
            await self._false_interrupt(interrupt)
            return
        if interrupt is None or not self.agent.speaking:
            return
        trigger = f"{source}:{interrupt.reason}"
        if await self.agent.barge_in(trigger, time.time(), interrupt.trigger_audio_ms):
            cut = self.agent.last_cut
            self.interrupted_turn = -1 if cut is None or cut.turn_id is None else cut.turn_id
            heard_at = self.ctx.wall_at(interrupt.trigger_audio_ms)
            self.ctx.deps.metrics.stage("barge_in_reaction", time.time() - heard_at)
            log.info("barge-in (%s) at %d ms", trigger, interrupt.trigger_audio_ms)

    # ---- STT connection ------------------------------------------------------------------
    async def run(self) -> None:
        """Keep an STT socket fed until the call ends, reconnecting from unfinalized audio."""
        failures = 0
        while not self.closing:
            start = self.backlog.base
            stt = DeepgramStt(
                self.ctx.settings,
                self.ctx.call_sid,
                keyterms=self.ctx.started.keyterms,
                audio_offset_ms=start * FRAME_MS,
                clients=self.ctx.deps.clients,
            )
            try:
                with _tracer.start_as_current_span("stt.connect", attributes={"attempt": failures}):
                    await stt.open()
            except (OSError, TimeoutError, WebSocketException, ApiError) as exc:
                failures += 1
                await self._provider_error(f"STT connect failed ({failures}): {exc}")
                if failures > MAX_STT_RETRIES:
                    raise
                await asyncio.sleep(min(0.1 * 2**failures, 2.0))
                continue
            failures = 0
            self._stt = stt
            sender = asyncio.create_task(self.feed.feed(stt, start))
            try:
                async for event in stt.events():
                    await self._on_stt(event)
            except (OSError, WebSocketException) as exc:
                log.warning("STT socket failed: %s", exc)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError, WebSocketException):
                    await sender
                self._stt = None
                if self.closing:
                    self._stt_done.set()
                with contextlib.suppress(OSError, WebSocketException, RuntimeError):
                    await stt.close()
            if not self.closing:
                self.ctx.deps.metrics.provider_reconnects.labels("deepgram-stt").inc()
                await self._provider_error("STT socket dropped; reconnecting with buffered audio")

    async def close(self, *, drain: bool = True) -> None:
        """The call is over: stop feeding STT. With `drain` (not when the call moves to another
        replica), words still being transcribed are waited for and stored as a last caller line
        that nobody answers: the record holds what the caller said before hanging up."""
        self.closing = True
        await self.feed.flush()
        self.backlog.close()
        stt = self._stt
        if not drain or stt is None or not (self.hearing or self.utterance):
            return
        with contextlib.suppress(OSError, WebSocketException, RuntimeError):
            await stt.finish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stt_done.wait(), self.ctx.settings.stt_drain_s)
        text, self.utterance, self.hearing = " ".join(self.utterance), [], False
        if text.strip():
            turn_id = self.ctx.next_turn()
            await self.ctx.append(
                ev.TurnRequested(call_sid=self.ctx.call_sid, turn_id=turn_id, text=text)
            )

    async def _on_late_stt(self, event: SttEvent) -> None:
        """A final after hang-up: kept for the last line (no turn, no barge-in)."""
        if isinstance(event, SttTranscript) and event.is_final and event.text:
            await self.ctx.append(
                ev.TranscriptFinal(
                    call_sid=self.ctx.call_sid,
                    text=event.text,
                    audio_start_ms=event.start_ms,
                    audio_end_ms=event.end_ms,
                    speech_final=event.speech_final,
                )
            )
            self.utterance.append(event.text)

    async def _provider_error(self, message: str) -> None:
        await self.ctx.append(
            ev.ProviderError(call_sid=self.ctx.call_sid, provider="deepgram-stt", message=message)
        )

    # ---- transcripts and turns -----------------------------------------------------------
    async def _on_stt(self, event: SttEvent) -> None:
        if self.closing:
            await self._on_late_stt(event)
            return
        sid = self.ctx.call_sid
        arrived = time.time()
        if isinstance(event, SttSpeechStarted):
            self.hearing = True
            self.on_activity()
            await self.ctx.append(ev.SpeechStarted(call_sid=sid, audio_ms=event.audio_ms))
            if self.vad is None:  # with a local VAD, it alone times voice (onset and offset)
                await self._decide(self.detector.voice_started(event.audio_ms), "stt")
        elif isinstance(event, SttTranscript) and event.text:
            self.hearing = True
            self.on_activity()
            self.turn_end.words_arrived()  # a held utterance goes on
            if not event.is_final:
                await self.ctx.append(
                    ev.TranscriptInterim(
                        call_sid=sid,
                        text=event.text,
                        audio_start_ms=event.start_ms,
                        audio_end_ms=event.end_ms,
                    )
                )
                await self._decide(
                    self.detector.transcript(event.text, event.end_ms, is_final=False), "stt"
                )
                if self.preempt is not None:
                    await self.preempt.interim(event.text, event.end_ms, self.agent.speaking)
                return
            await self.ctx.append(
                ev.TranscriptFinal(
                    call_sid=sid,
                    text=event.text,
                    audio_start_ms=event.start_ms,
                    audio_end_ms=event.end_ms,
                    speech_final=event.speech_final,
                )
            )
            self.backlog.finalized_until(event.end_ms)
            self.ctx.deps.metrics.stage(
                "final_transcript", arrived - self.ctx.wall_at(event.end_ms)
            )
            self.utterance.append(event.text)
            await self._decide(
                self.detector.transcript(event.text, event.end_ms, is_final=True), "stt"
            )
            if event.speech_final and self.turn_end.speech_final(
                " ".join(self.utterance), event.end_ms
            ):
                await self._end_utterance(event.end_ms, arrived)
        elif isinstance(event, SttUtteranceEnd) and self.utterance:
            await self._end_utterance(event.last_word_end_ms, arrived)

    async def _false_interrupt(self, verdict: FalseInterrupt) -> None:
        """The onset interrupt was a backchannel or a cough: the agent says again what was cut
        (nothing new was said), and the event says so; this utterance is not a turn."""
        log.info("false interrupt at %d ms (%r)", verdict.trigger_audio_ms, verdict.words)
        turn_id, self.interrupted_turn = self.interrupted_turn, -1
        respoken = await self.agent.respeak(turn_id) if turn_id >= 0 else 0
        await self.ctx.append(
            ev.FalseInterrupt(
                call_sid=self.ctx.call_sid,
                turn_id=turn_id,
                trigger_audio_ms=verdict.trigger_audio_ms,
                words=" ".join(verdict.words),
                respoken=respoken,
                resumed_from_ms=self.agent.resumed_from_ms if respoken else 0,
            )
        )

    async def _end_utterance(self, speech_end_ms: int, stt_final_at: float) -> None:
        text, self.utterance, self.hearing = " ".join(self.utterance), [], False
        self.turn_end.ended()
        took_the_floor = self.detector.interrupted
        verdict = self.detector.utterance_ended(speech_end_ms)
        preempted = self.preempt.settle() if self.preempt is not None else None
        if verdict is not None:
            await self._false_interrupt(verdict)
            return  # "mhm" that cut the agent off: not a turn either (a preemptive reply times out)
        if self.agent.speaking and not took_the_floor:
            # "mhm", or one word over the agent ("wow") that did not interrupt it, or words
            # that came after an onset was undone: the agent goes on, and this is no turn
            # (a preemptive reply times out).
            log.info("over-talk that did not interrupt: %r", text)
            return
        turn_id = preempted or self.ctx.next_turn()
        self.ctx.latest_caller_turn = turn_id
        request = ev.TurnRequested(call_sid=self.ctx.call_sid, turn_id=turn_id, text=text)
        if preempted:  # its work item went with `turn.preempted`: the brain holds the reply
            await self.ctx.append(request)
        else:  # the turn and its work item in one round trip (the brain reads it from the log)
            await self.ctx.append_then_publish(
                request, keys.TURNS, {"call_sid": self.ctx.call_sid, "turn_id": str(turn_id)}
            )
        self.agent.caller_turn_confirmed(turn_id)  # the filler's timer starts (issue 17)
        await self.ctx.latency(turn_id, "speech_end", self.ctx.wall_at(speech_end_ms))
        await self.ctx.latency(turn_id, "stt_final", stt_final_at)
