"""The stream bus against real Redis: call logs, multiplexed reads, trace context."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from redis.asyncio import Redis

from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.contract import keys
from shared.runtime.telemetry import context_from, setup_tracing, tracer
from sim.twilio_webhook import new_sid
from tests.conftest import Infra


async def test_append_and_read_back_in_order(call_log: CallLog) -> None:
    sid = new_sid("CA")
    written = [ev.TurnRequested(call_sid=sid, turn_id=i, text=f"line {i}") for i in range(5)]
    ids = [await call_log.append(e) for e in written]
    read = await call_log.entries(sid)
    assert [i for i, _ in read] == ids
    assert [e for _, e in read] == written


async def test_trace_context_rides_in_the_entry(call_log: CallLog) -> None:
    setup_tracing("test")
    sid = new_sid("CA")
    with tracer("test").start_as_current_span("turn") as span:
        await call_log.append(ev.SpeechStarted(call_sid=sid, audio_ms=10))
        expected_trace = span.get_span_context().trace_id
    [(_, event)] = await call_log.entries(sid)
    assert event.traceparent is not None
    parent = trace.get_current_span(context_from(event.traceparent)).get_span_context()
    assert parent.trace_id == expected_trace


async def test_call_streams_share_slot_group_hash_tags() -> None:
    sid = new_sid("CA")
    key = keys.call_stream(sid, 16)
    assert key.startswith("fd:{g") and key.endswith(sid)
    assert keys.group_of_key(key) == keys.slot_group(sid, 16)


async def test_many_calls_over_one_blocking_connection(infra: Infra, call_log: CallLog) -> None:
    mux = StreamMux.from_url(infra.redis_url, block_ms=60_000)
    try:
        sids = [new_sid("CA") for _ in range(50)]
        subs = {sid: await mux.subscribe(call_log.key(sid)) for sid in sids}
        for n in range(3):
            for sid in sids:
                await call_log.append(ev.Dtmf(call_sid=sid, digit=str(n)))
        for sid, sub in subs.items():
            got = [await asyncio.wait_for(sub.next(), 10) for _ in range(3)]
            assert [e[1].digit for e in got if isinstance(e[1], ev.Dtmf)] == ["0", "1", "2"], sid
        assert mux.connections == 1
    finally:
        await mux.close()


async def test_new_subscription_does_not_wait_for_the_block_timeout(
    infra: Infra, call_log: CallLog
) -> None:
    # The lane blocks for 60 s; the wake-up stream must interrupt it for a new call at once.
    mux = StreamMux.from_url(infra.redis_url, block_ms=60_000)
    try:
        first = await mux.subscribe(call_log.key(new_sid("CA")))
        sid = new_sid("CA")
        late = await mux.subscribe(call_log.key(sid))
        await call_log.append(ev.Dtmf(call_sid=sid, digit="5"))
        item = await late.next(timeout=10)
        assert item is not None and isinstance(item[1], ev.Dtmf) and item[1].digit == "5"
        assert first.queue.empty()
    finally:
        await mux.close()


async def test_second_subscriber_catches_up_from_its_own_position(
    infra: Infra, call_log: CallLog
) -> None:
    mux = StreamMux.from_url(infra.redis_url, block_ms=60_000)
    sid = new_sid("CA")
    try:
        early = await mux.subscribe(call_log.key(sid))
        for digit in "123":
            await call_log.append(ev.Dtmf(call_sid=sid, digit=digit))
        for _ in range(3):
            assert await early.next(timeout=10) is not None
        late = await mux.subscribe(call_log.key(sid), after="0-0")
        await call_log.append(ev.Dtmf(call_sid=sid, digit="4"))
        digits = []
        for _ in range(4):
            item = await late.next(timeout=10)
            assert item is not None and isinstance(item[1], ev.Dtmf)
            digits.append(item[1].digit)
        assert digits == ["1", "2", "3", "4"]
    finally:
        await mux.close()


async def test_a_typed_subscription_gets_only_its_types_live_and_catching_up(
    infra: Infra, call_log: CallLog
) -> None:
    mux = StreamMux.from_url(infra.redis_url, block_ms=60_000)
    sid = new_sid("CA")
    dtmf_only = frozenset({ev.type_of(ev.Dtmf)})
    try:
        everything = await mux.subscribe(call_log.key(sid))
        digits = await mux.subscribe(call_log.key(sid), types=dtmf_only)
        await call_log.append(ev.Dtmf(call_sid=sid, digit="1"))
        await call_log.append(ev.TurnRequested(call_sid=sid, turn_id=1, text="hi"))
        await call_log.append(ev.Dtmf(call_sid=sid, digit="2"))
        got_all = [await everything.next(timeout=10) for _ in range(3)]
        assert [type(item[1]) for item in got_all if item] == [ev.Dtmf, ev.TurnRequested, ev.Dtmf]
        got = [await digits.next(timeout=10) for _ in range(2)]
        assert [item[1].digit for item in got if item and isinstance(item[1], ev.Dtmf)] == [
            "1",
            "2",
        ]
        late = await mux.subscribe(call_log.key(sid), after="0-0", types=dtmf_only)
        await call_log.append(ev.Dtmf(call_sid=sid, digit="3"))
        caught = [await late.next(timeout=10) for _ in range(3)]
        assert [item[1].digit for item in caught if item and isinstance(item[1], ev.Dtmf)] == [
            "1",
            "2",
            "3",
        ]
        last = await digits.next(timeout=10)
        assert last is not None and isinstance(last[1], ev.Dtmf) and last[1].digit == "3"
        assert digits.queue.empty() and late.queue.empty()  # the turn never reached them
    finally:
        await mux.close()


async def test_unsubscribe_ends_the_iterator(infra: Infra, redis: Redis) -> None:
    mux = StreamMux.from_url(infra.redis_url, block_ms=60_000)
    try:
        sub = await mux.subscribe(keys.call_stream(new_sid("CA"), 16))
        await mux.unsubscribe(sub)
        assert [e async for e in sub] == []
    finally:
        await mux.close()


async def test_readers_can_skip_event_types_without_parsing(call_log: CallLog) -> None:
    sid = new_sid("CA")
    await call_log.append(ev.TurnRequested(call_sid=sid, turn_id=1, text="hi"))
    await call_log.append(
        ev.TranscriptInterim(call_sid=sid, text="h", audio_start_ms=0, audio_end_ms=20)
    )
    await call_log.append(ev.Dtmf(call_sid=sid, digit="1"))
    kept = await call_log.entries(sid, skip=frozenset({"transcript.interim", "caller.dtmf"}))
    assert [type(e) for _, e in kept] == [ev.TurnRequested]
    assert len(await call_log.entries(sid)) == 3


async def test_event_and_its_work_item_go_out_in_order(call_log: CallLog) -> None:
    sid = new_sid("CA")
    work = f"fd:test:turns:{sid}"
    entry = await call_log.append_then_publish(
        ev.TurnRequested(call_sid=sid, turn_id=1, text="hello"),
        work,
        {"call_sid": sid, "turn_id": "1"},
    )
    [(logged_id, logged)] = await call_log.entries(sid)
    assert logged_id == entry and isinstance(logged, ev.TurnRequested) and logged.text == "hello"
    items = await call_log.redis.xrange(work)
    assert [fields for _, fields in items] == [{"call_sid": sid, "turn_id": "1"}]
    ms_seq = [tuple(int(p) for p in i.split("-")) for i in (entry, items[0][0])]
    assert ms_seq[0][0] <= ms_seq[1][0]  # the item was added after the event
    await call_log.redis.delete(work)
