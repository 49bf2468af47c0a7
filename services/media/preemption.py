"""When has the caller probably finished? The trigger of preemptive replies (issue 17).

"Probably finished" is: the local VAD heard the caller's voice stop (`preempt_silence_ms` of
silence, long before STT's endpointing fires), the latest interim transcript already covers
the audio up to that stop, so no word said before the silence is missing from it, and it reads
as a finished sentence (STT's smart formatting ended it with `.`, `?` or `!`: a pause after
"my number is" or "Great," is not the end of a turn). Then media
writes `turn.preempted` (the interim's words) and publishes the turn's work item at once; the
brain starts the reply and holds it. When STT's final comes, `settle` hands back the turn id,
and the final is written as that turn's `turn.requested` (no second work item): the brain
compares the words and speaks the held reply or starts again (see services/brain/preemptive.py).

At most one preemptive reply per utterance; none while the agent is talking (that speech is a
barge-in or a backchannel, not a turn that is ending). Without a VAD model nothing preempts.
"""

from __future__ import annotations

from services.media.call_context import CallContext
from services.media.caller.backlog import FRAME_MS
from shared.contract import events as ev
from shared.contract import keys
from shared.speech.vad import SileroVad, VadModel, VadOptions, VoiceStarted, VoiceStopped

SENTENCE_END = (".", "?", "!")
"""How a finished sentence ends in a formatted transcript."""
COVER_SLACK_MS = 64
"""An interim covers the voice stop when it ends at most this much before it (two VAD windows:
the VAD reports the first silent window, STT the end of the last word)."""


class PreemptTrigger:
    """One call's end-of-utterance guess; fed caller frames while the agent is silent and the
    interim transcripts."""

    def __init__(self, ctx: CallContext, model: VadModel, silence_ms: int) -> None:
        self.ctx = ctx
        self.vad = SileroVad(model, VadOptions(min_speech_ms=64, min_silence_ms=silence_ms))
        self._offset_ms = 0  # call audio time of the VAD's first frame since its last reset
        self._fed_until = -1  # index of the last frame fed (a gap means the VAD restarts)
        self._stopped_ms: int | None = None  # voice stop in call audio time; None: voice on
        self.voice_on = False  # the caller's voice is on now (as of the latest frame fed)
        self.voice_started_ms = -1  # call audio time the latest voice began
        self.voice_stopped_ms = -1  # call audio time the latest voice ended
        self._interim = ""
        self._interim_end_ms = -1
        self.turn_id: int | None = None  # the preemptive turn of the utterance in progress

    async def frame(self, frame: bytes, index: int) -> None:
        """One caller frame (while the agent is silent)."""
        if index != self._fed_until + 1:
            self.vad.reset()
            self._offset_ms = index * FRAME_MS
            self.voice_on = False
        self._fed_until = index
        for event in self.vad.feed(frame):
            at = self._offset_ms + int(event.audio_ms)
            if isinstance(event, VoiceStarted):
                self._stopped_ms = None
                self.voice_on, self.voice_started_ms = True, at
            elif isinstance(event, VoiceStopped):
                self._stopped_ms = at
                self.voice_on, self.voice_stopped_ms = False, at
                await self._check()

    def voice_after(self, after_ms: int, index: int) -> tuple[bool, int | None]:
        """Did the caller's voice start after call audio time `after_ms`? (voice on now, the
        time it stopped or None while on); (False, None) when not, or when the VAD was not
        fed up to frame `index` (the agent talked: this VAD did not listen)."""
        if self._fed_until != index or self.voice_started_ms <= after_ms:
            return False, None
        return True, None if self.voice_on else self.voice_stopped_ms

    async def interim(self, text: str, end_ms: int, agent_speaking: bool) -> None:
        """An interim transcript of the utterance in progress."""
        self._interim, self._interim_end_ms = text, end_ms
        if not agent_speaking:
            await self._check()

    def settle(self) -> int | None:
        """The utterance is over (STT final): the preemptive turn id to confirm, if any."""
        turn_id, self.turn_id = self.turn_id, None
        self._interim, self._interim_end_ms, self._stopped_ms = "", -1, None
        return turn_id

    async def _check(self) -> None:
        stopped, text = self._stopped_ms, self._interim.strip()
        if self.turn_id is not None or stopped is None or not text.endswith(SENTENCE_END):
            return
        if self._interim_end_ms < stopped - COVER_SLACK_MS:
            return  # words before the silence may be missing from the interim
        ctx = self.ctx
        self.turn_id = ctx.next_turn()
        await ctx.append_then_publish(
            ev.TurnPreempted(call_sid=ctx.call_sid, turn_id=self.turn_id, text=text),
            keys.TURNS,
            {"call_sid": ctx.call_sid, "turn_id": str(self.turn_id)},
        )
