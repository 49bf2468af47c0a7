"""Caller audio while the agent talks -> barge-in decisions, frame by frame. Pure (no I/O).

Ties the three per-call parts together on one audio clock (ms of caller audio since the stream
began; frame `index` covers [index * 20, (index + 1) * 20)):
- `vad.SileroVad` (speech probability per 32 ms window, voice onset/offset),
- `speech_gate.SpeechGate` (the same windows: loud over the agent's echo? voiced?),
- `barge_in.BargeInDetector` (the policy).
Both are reset when the agent starts talking (their windows then start at that frame), and
fed while the agent talks or while an "onset" interrupt waits for words to confirm it. STT
events go to `detector` directly (`input.CallerInput`).
"""

from __future__ import annotations

from services.media.caller.backlog import FRAME_MS
from services.media.caller.barge_in import BargeInDetector, Decision
from services.media.caller.speech_gate import WINDOW_MS, SpeechGate
from shared.speech.vad import SileroVad, VoiceStarted


class OverTalk:
    """One call's listening while the agent talks."""

    def __init__(
        self, detector: BargeInDetector, vad: SileroVad | None, gate: SpeechGate | None
    ) -> None:
        self.detector = detector
        self.vad = vad
        self.gate = gate if vad is not None else None  # the gate needs the VAD's windows
        self.offset_ms = 0  # audio time where the VAD and gate windows start

    def frame(self, frame: bytes, index: int, agent_speaking: bool) -> list[Decision]:
        """Frame `index` arrived; `agent_speaking`: agent audio is playing at Twilio."""
        audio_ms = (index + 1) * FRAME_MS
        detector = self.detector
        out: list[Decision | None] = []
        if agent_speaking != detector.agent_is_speaking:
            if agent_speaking and self.vad is not None and not detector.confirming:
                self.vad.reset()
                if self.gate is not None:
                    self.gate.restart()
                self.offset_ms = index * FRAME_MS
            out.append(detector.agent_speaking(agent_speaking, audio_ms))
        if self.vad is not None and (agent_speaking or detector.confirming):
            out += self._listen(frame)
            out.append(detector.advance(audio_ms))
        return [d for d in out if d is not None]

    def _listen(self, frame: bytes) -> list[Decision | None]:
        assert self.vad is not None
        detector, offset = self.detector, self.offset_ms
        out: list[Decision | None] = []
        for event in self.vad.feed(frame):
            at = offset + int(event.audio_ms)
            if isinstance(event, VoiceStarted):
                out.append(detector.voice_started(at))
            else:
                detector.voice_stopped(at)
        if self.gate is not None:
            threshold = self.vad.options.threshold
            for window, prob in zip(self.gate.feed(frame), self.vad.probabilities, strict=True):
                voice = window.voice and prob >= threshold
                out.append(detector.voice_window(offset + window.audio_ms, voice, WINDOW_MS))
        return out
