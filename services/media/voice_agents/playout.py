"""A provider voice agent's audio on its way to Twilio: segments, marks, clears (one call).

The agent streams audio tagged by response (`event_id`) and sends each response's text on
its own; this turns that into the cascade's events: `AgentText` per response, `SegmentSent` +
a Twilio mark per response's audio, `SegmentPlayed` on the echo, `BargeIn` on a clear. The
bookkeeping is `SegmentLedger`'s, so heard text and cleared marks mean what they mean in the
cascade.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time

from services.media.agent_speech.segment_ledger import Segment, SegmentLedger
from services.media.call_context import CallContext
from services.media.twilio.link import TwilioLink
from shared.bus.waiting import wait_event
from shared.contract import events as ev

SEGMENT_GAP_S = 0.4
"""No audio for this long ends the open segment (its mark goes out)."""


class BadAgentAudio(ValueError):
    """The agent sent audio that is not valid base64."""


class AgentPlayout:
    """Agent responses -> Twilio media and marks, with the call-log events that go with them."""

    def __init__(self, ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]):
        self.ctx = ctx
        self.link = link
        self.ledger = SegmentLedger()
        self.lock = asyncio.Lock()
        self.turn_id = ctx.turn_id
        self.seq = sum(
            1 for _, e in history if isinstance(e, ev.AgentText) and e.turn_id == ctx.turn_id
        )
        self.open: Segment | None = None
        self.open_event_id = 0
        self.pending: tuple[int, str] | None = None  # a response's (seq, text) before its audio
        self.last_interrupt_id = 0
        self.last_audio_at = 0.0
        self.turns_with_audio: set[int] = set()
        self.changed = asyncio.Event()
        self.gap_task: asyncio.Task[None] | None = None

    def start_turn(self, turn_id: int) -> None:
        """The caller spoke: what the agent says next belongs to this turn."""
        self.turn_id, self.seq, self.pending = turn_id, 0, None

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    async def on_agent_response(self, text: str) -> None:
        """The text of a response (sent around its first audio chunk)."""
        if not text:
            return
        async with self.lock:
            if self.open is not None and not self.open.text:
                self.open.text, seq = text, self.open.seq
            else:
                seq = self._next_seq()
                self.pending = (seq, text)
            await self.ctx.append(
                ev.AgentText(call_sid=self.ctx.call_sid, turn_id=self.turn_id, seq=seq, text=text)
            )

    async def on_audio(self, event_id: int, audio_b64: str) -> None:
        """A chunk of a response's audio (dropped if that response was interrupted)."""
        if event_id <= self.last_interrupt_id:
            return
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadAgentAudio("agent audio is not valid base64") from exc
        async with self.lock:
            if self.open is not None and self.open_event_id != event_id:
                await self._close()
            if self.open is None:
                seq, text = self.pending or (self._next_seq(), "")
                self.pending = None
                self.open, self.open_event_id = self.ledger.queue(self.turn_id, seq, text), event_id
            segment, _ = self.ledger.audio(len(audio))
            await self.link.send_media(audio)
            if segment is not None and segment.turn_id not in self.turns_with_audio:
                self.turns_with_audio.add(segment.turn_id)
                await self.ctx.latency(segment.turn_id, "first_audio_sent", time.time())
            self.last_audio_at = time.monotonic()
        self.changed.set()
        if self.gap_task is None or self.gap_task.done():
            self.gap_task = asyncio.create_task(self._gap_watch())

    async def _gap_watch(self) -> None:
        while True:
            await asyncio.sleep(max(self.last_audio_at + SEGMENT_GAP_S - time.monotonic(), 0))
            if time.monotonic() - self.last_audio_at >= SEGMENT_GAP_S:
                await self.finish_segment()
                return

    async def finish_segment(self) -> None:
        """End the open segment now (another response, a transcript or a tool call came)."""
        async with self.lock:
            await self._close()

    async def _close(self) -> None:
        segment, self.open = self.open, None
        if segment is None:
            return
        self.ledger.flushed()
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
        self.changed.set()

    async def on_interruption(self, event_id: int) -> None:
        """The agent noticed the caller talking over it: drop Twilio's queued audio."""
        async with self.lock:
            self.last_interrupt_id = max(self.last_interrupt_id, event_id)
            self.pending = None
            await self._close()
            cut = self.ledger.clear()
            await self.link.send_clear()
            if cut.turn_id is not None:
                await self.ctx.append(
                    ev.BargeIn(
                        call_sid=self.ctx.call_sid,
                        turn_id=cut.turn_id,
                        trigger="agent-interruption",
                        trigger_at=time.time(),
                        heard_text=cut.heard_text,
                        cleared_marks=cut.cleared_marks,
                    )
                )
        self.changed.set()

    async def on_mark(self, name: str) -> None:
        """Twilio echoed a mark: that segment played (or was cleared)."""
        segment = self.ledger.played(name)
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
        self.changed.set()

    @property
    def quiet(self) -> bool:
        """Nothing is being received or played."""
        return self.open is None and not self.ledger.busy

    async def settle(self, quiet_s: float, max_s: float) -> None:
        """Wait (at most `max_s`) until everything played and no audio came for `quiet_s`."""
        deadline = time.monotonic() + max_s
        while (now := time.monotonic()) < deadline:
            silent_for = now - self.last_audio_at
            if self.quiet and silent_for >= quiet_s:
                return
            self.changed.clear()
            wait = quiet_s - silent_for if self.quiet else deadline - now
            await wait_event(self.changed, max(min(wait, deadline - now), 0.01))

    async def drain(self, max_s: float) -> None:
        """Wait (at most `max_s`) until every segment sent has played."""
        await self.settle(0.0, max_s)

    def close(self) -> None:
        """Stop the gap watcher (end of call)."""
        if self.gap_task is not None:
            self.gap_task.cancel()
