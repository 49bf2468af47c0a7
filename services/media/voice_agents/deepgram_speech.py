"""A provider voice agent's speech on the Twilio socket, logged like the cascade's.

One segment = one agent utterance (AgentStartedSpeaking .. AgentAudioDone): its audio goes to
Twilio as it arrives; at its end `audio.segment_sent` and a mark; Twilio's echo becomes
`audio.segment_played`. Agent text becomes `agent.text` of the current turn. A barge-in clears
Twilio's buffer, drops the unfinished segment and logs what the caller had heard
(`SegmentLedger` does the bookkeeping, exactly as for the cascade).

As in the cascade, an utterance's `agent.text` and its segment share one `seq` (mark
`t<turn>-s<seq>`): one counter per turn numbers utterances, not messages. A new utterance's
text never joins an open segment that already has text (a response the agent cut without
`AgentAudioDone`): that segment is closed first. A barge-in drops text still waiting for its
audio, even when nothing was playing yet, so it cannot prefix the next utterance.
"""

from __future__ import annotations

import asyncio
import time

from services.media.agent_speech.segment_ledger import Segment, SegmentLedger
from services.media.agent_speech.tts_protocol import TtsFlushed, TtsStream
from services.media.call_context import CallContext
from services.media.twilio.link import TwilioLink
from shared.contract import events as ev


class AgentSpeech:
    """Agent utterances -> Twilio media + marks, and the matching call-log events."""

    def __init__(self, ctx: CallContext, link: TwilioLink) -> None:
        self.ctx = ctx
        self.link = link
        self.ledger = SegmentLedger()
        self.current: Segment | None = None
        self.pending: tuple[int, str] | None = None  # (seq, text) of an utterance before audio
        self.played = 0  # segments whose mark came back uncleared
        self.changed = asyncio.Event()
        self._seq: dict[int, int] = {}
        self._turns_with_audio: set[int] = set()

    @property
    def busy(self) -> bool:
        """Audio is arriving or still queued at Twilio (not cleared)."""
        return self.ledger.busy

    def _next_seq(self, turn_id: int) -> int:
        seq = self._seq.get(turn_id, 0)
        self._seq[turn_id] = seq + 1
        return seq

    async def text(self, turn_id: int, text: str) -> None:
        """What the agent says (ConversationText assistant) -> agent.text of the turn, with the
        seq of the segment that carries it."""
        if self.current is not None and self.current.text:
            await self.done()  # the previous utterance was cut without AgentAudioDone
        if self.current is not None:  # its audio came first: the text names that segment
            self.current.text, seq = text, self.current.seq
        else:
            seq = self._next_seq(turn_id)
            self.pending = (seq, text)
        await self.ctx.append(
            ev.AgentText(call_sid=self.ctx.call_sid, turn_id=turn_id, seq=seq, text=text)
        )

    def start(self, turn_id: int) -> Segment:
        """An utterance begins (AgentStartedSpeaking, or audio without it)."""
        if self.current is None:
            seq, text = self.pending or (self._next_seq(turn_id), "")
            self.pending = None
            self.current = self.ledger.queue(turn_id, seq, text)
        return self.current

    async def audio(self, turn_id: int, chunk: bytes) -> None:
        """Agent audio: straight to Twilio."""
        self.start(turn_id)
        segment, _ = self.ledger.audio(len(chunk))
        await self.link.send_media(chunk)
        if segment is not None and segment.turn_id not in self._turns_with_audio:
            self._turns_with_audio.add(segment.turn_id)
            await self.ctx.latency(segment.turn_id, "first_audio_sent", time.time())

    async def done(self) -> None:
        """The utterance's last audio was sent (AgentAudioDone): log it and mark it."""
        if self.current is None:
            return
        self.current = None
        segment = self.ledger.flushed()
        if segment is None:
            return
        await self.ctx.append(
            ev.SegmentSent(
                call_sid=self.ctx.call_sid,
                turn_id=segment.turn_id,
                seq=segment.seq,
                mark=segment.mark,
                text=segment.text,
                audio_bytes=segment.audio_bytes,
            )
        )
        await self.link.send_mark(segment.mark)

    async def on_mark(self, name: str) -> None:
        """Twilio echoed a mark: the segment was heard (or dropped by a clear)."""
        segment = self.ledger.played(name)
        if segment is None:
            return
        await self.ctx.append(
            ev.SegmentPlayed(
                call_sid=self.ctx.call_sid,
                turn_id=segment.turn_id,
                seq=segment.seq,
                mark=name,
                cleared=segment.cleared,
            )
        )
        if not segment.cleared:
            self.played += 1
        self.changed.set()

    async def barge_in(self, trigger: str, trigger_at: float) -> bool:
        """Stop the agent's audio at Twilio; False if nothing was playing."""
        self.pending = None  # an utterance whose audio has not started is dropped either way
        if not self.ledger.busy:
            return False
        await self.link.send_clear()
        cut = self.ledger.clear()
        self.current = None
        await self.ctx.append(
            ev.BargeIn(
                call_sid=self.ctx.call_sid,
                turn_id=cut.turn_id if cut.turn_id is not None else -1,
                trigger=trigger,
                trigger_at=trigger_at,
                heard_text=cut.heard_text,
                cleared_marks=cut.cleared_marks,
            )
        )
        self.changed.set()
        return True

    async def say_with(self, tts: TtsStream, turn_id: int, text: str, timeout_s: float) -> bool:
        """Speak `text` with our own TTS (the agent is gone) and wait until it was heard.
        False if TTS or the mark echo did not come within `timeout_s`."""
        await self.text(turn_id, text)
        played_before = self.played
        try:
            async with asyncio.timeout(timeout_s):
                await tts.open()
                await tts.speak(text)
                async for item in tts.events():
                    if isinstance(item, bytes):
                        await self.audio(turn_id, item)
                    elif isinstance(item, TtsFlushed):
                        await self.done()
                        break
                while self.played == played_before and not self.link.closed:
                    self.changed.clear()
                    await self.changed.wait()
        except (TimeoutError, OSError, ConnectionError):
            return False
        return self.played > played_before
