"""The deepgram-agent pipeline's speech log under reordered agent messages (issue 13).

Under load the Voice Agent's messages reach media in orders the happy path never shows: the
caller talks before a response's audio starts (UserStartedSpeaking between its
ConversationText and AgentStartedSpeaking), or a response is cut without AgentAudioDone and
the next one begins. The transcript then showed "Sorry, go on? Sorry, go on?": the old code
kept a cut utterance's text and prefixed it to the next one, and numbered `agent.text` and the
segment from one counter, so no `agent.text` matched its segment's seq. These tests drive
`AgentSpeech` in those orders (event order, not wall time) against the real call log; the
Twilio socket is a recorder of what media sent (the network boundary).
"""

from __future__ import annotations

import json
import time
from typing import Any

from services.media.call_context import CallContext, MediaDeps
from services.media.twilio.link import TwilioLink
from services.media.voice_agents.deepgram_speech import AgentSpeech
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.runtime.settings import Settings
from sim.twilio_webhook import new_sid

AUDIO = b"\xff" * 160


class TwilioSocket:
    """What media sent on the Twilio Media Stream socket."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))


def speech_of(call_log: CallLog) -> tuple[AgentSpeech, CallContext, TwilioSocket]:
    deps = MediaDeps(settings=Settings(), log=call_log, mux=None, replica="r")  # type: ignore[arg-type]
    call_sid = new_sid("CA")
    ctx = CallContext(
        deps=deps,
        call_sid=call_sid,
        stream_sid=new_sid("MZ"),
        started=ev.CallStarted(call_sid=call_sid, from_number="+1", to_number="+2"),
        start_received_at=time.time(),
    )
    socket = TwilioSocket()
    link = TwilioLink(socket)  # type: ignore[arg-type]
    return AgentSpeech(ctx, link), ctx, socket


async def logged(call_log: CallLog, call_sid: str, kind: type[ev.Event]) -> list[Any]:
    return [e for _, e in await call_log.entries(call_sid) if isinstance(e, kind)]


async def utterance(speech: AgentSpeech, turn_id: int, text: str, done: bool = True) -> None:
    """ConversationText, AgentStartedSpeaking, audio[, AgentAudioDone]."""
    await speech.text(turn_id, text)
    speech.start(turn_id)
    await speech.audio(turn_id, AUDIO)
    if done:
        await speech.done()


async def test_barge_in_before_the_audio_drops_the_waiting_text(call_log: CallLog) -> None:
    speech, ctx, _ = speech_of(call_log)
    await speech.text(1, "Sorry, go on?")  # its audio has not started when the caller talks
    assert not await speech.barge_in("UserStartedSpeaking", time.time())
    await utterance(speech, 2, "Sorry, go on?")

    sent = await logged(call_log, ctx.call_sid, ev.SegmentSent)
    assert [(s.turn_id, s.text) for s in sent] == [(2, "Sorry, go on?")]


async def test_a_cut_response_is_not_prefixed_to_the_next(call_log: CallLog) -> None:
    speech, ctx, socket = speech_of(call_log)
    await utterance(speech, 1, "Sorry, go on?", done=False)  # cut: no AgentAudioDone
    await utterance(speech, 2, "Sorry, go on?")

    sent = await logged(call_log, ctx.call_sid, ev.SegmentSent)
    assert [(s.turn_id, s.text) for s in sent] == [(1, "Sorry, go on?"), (2, "Sorry, go on?")]
    marks = [m["mark"]["name"] for m in socket.sent if m["event"] == "mark"]
    assert marks == [s.mark for s in sent] and len(set(marks)) == 2


async def test_agent_text_and_its_segment_share_a_seq(call_log: CallLog) -> None:
    speech, ctx, _ = speech_of(call_log)
    await utterance(speech, 0, "Thanks for calling, how can I help?")
    await utterance(speech, 1, "One moment.")
    await utterance(speech, 1, "You're booked in.")
    speech.start(2)  # audio before its text (the text names the open segment)
    await speech.audio(2, AUDIO)
    await speech.text(2, "Goodbye!")
    await speech.done()

    texts = await logged(call_log, ctx.call_sid, ev.AgentText)
    sent = await logged(call_log, ctx.call_sid, ev.SegmentSent)
    assert [(t.turn_id, t.seq, t.text) for t in texts] == [
        (s.turn_id, s.seq, s.text) for s in sent
    ]
    assert [(s.turn_id, s.seq) for s in sent] == [(0, 0), (1, 0), (1, 1), (2, 0)]
