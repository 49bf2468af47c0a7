"""The silence timer starts from the agent's last mark echo, never racing it (issue 13).

Under load the call controller used to look at the timers while `on_mark` was still writing
`audio.segment_played` to Redis: the ledger already said "not speaking", but the idle time was
still that of the previous turn, so "Are you still there?" fired right after the agent finished.
The test interleaves the two by event order (the mark handler suspended in its Redis write),
not by wall clock.
"""

from __future__ import annotations

import asyncio
import time

from services.media.agent_speech.output import AgentOutput
from services.media.call_context import CallContext, MediaDeps
from services.media.call_control import CallControl
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.runtime.settings import Settings
from sim.twilio_webhook import new_sid


def agent_of(call_log: CallLog) -> tuple[AgentOutput, CallContext]:
    settings = Settings(silence_reprompt_s=5.0, silence_hangup_s=5.0)
    deps = MediaDeps(settings=settings, log=call_log, mux=None, replica="r")  # type: ignore[arg-type]
    call_sid = new_sid("CA")
    ctx = CallContext(
        deps=deps,
        call_sid=call_sid,
        stream_sid=new_sid("MZ"),
        started=ev.CallStarted(call_sid=call_sid, from_number="+1", to_number="+2"),
        start_received_at=time.time(),
    )
    # Neither the link nor TTS is touched by marks and timers.
    return AgentOutput(ctx, None, None, None), ctx  # type: ignore[arg-type]


async def closed(reason: str) -> None:
    raise AssertionError(f"the stream must not close ({reason})")


async def test_no_reprompt_while_the_last_mark_echo_is_being_logged(call_log: CallLog) -> None:
    agent, ctx = agent_of(call_log)
    control = CallControl(ctx, agent, closed)
    long_ago = time.monotonic() - 60  # the agent started a long reply after a long silence
    control.last_caller_activity = long_ago
    agent.idle_since = long_ago
    agent.ledger.queue(1, 0, "Here is a long answer.")
    agent.idle.clear()
    segment = agent.ledger.flushed()
    assert segment is not None and agent.speaking

    echoed_at = time.monotonic()
    echo = asyncio.create_task(agent.on_mark(segment.mark))
    await asyncio.sleep(0)  # the handler runs until it waits on Redis (the log write)
    assert not echo.done() and not agent.speaking
    assert agent.idle_since >= echoed_at  # the silence window starts at the echo
    await control.tick(time.monotonic())  # the controller wakes in that gap
    await echo

    texts = [e.text for _, e in await call_log.entries(ctx.call_sid) if isinstance(e, ev.AgentText)]
    assert texts == []  # no "Are you still there?"
    assert not control.reprompted
    played = [e for _, e in await call_log.entries(ctx.call_sid) if isinstance(e, ev.SegmentPlayed)]
    assert [p.mark for p in played] == [segment.mark]


async def test_reprompt_still_fires_after_the_silence_window(call_log: CallLog) -> None:
    agent, ctx = agent_of(call_log)
    control = CallControl(ctx, agent, closed)
    agent.ledger.queue(1, 0, "Anything else?")
    segment = agent.ledger.flushed()
    assert segment is not None
    agent.idle.clear()
    await agent.on_mark(segment.mark)
    finished = agent.idle_since
    control.last_caller_activity = finished - 60
    await control.tick(finished + 4.9)  # inside the 5 s window: nothing
    assert not control.reprompted
    await control.tick(finished + 5.1)
    assert control.reprompted
    texts = [e.text for _, e in await call_log.entries(ctx.call_sid) if isinstance(e, ev.AgentText)]
    assert texts == [ctx.settings.silence_reprompt_text]
