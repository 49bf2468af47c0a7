"""The key layout and the bus on a real 3-master Redis Cluster: every key of one call hashes to
one slot (asked of the cluster itself, for every key kind in shared.contract.keys), a
cross-slot command is refused (so the suite's check can fail), and multiplexed reads, appends
and work items work through redis-py's cluster client."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import pytest
from redis.exceptions import ClusterCrossSlotError, RedisClusterException

from frontdesk.local_cluster import LocalCluster
from shared.bus.call_end import end_call, take_live
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from shared.contract import keys
from sim.twilio_webhook import new_sid
from tests.cluster.conftest import cross_slot_refusals
from tests.conftest import Infra

GROUPS = 16


def per_call_key_kinds() -> dict[str, Callable[..., str]]:
    """Every function of shared.contract.keys that names a key of one call."""
    return {
        name: fn
        for name, fn in inspect.getmembers(keys, inspect.isfunction)
        if fn.__module__ == keys.__name__
        and "call_sid" in inspect.signature(fn).parameters
        and inspect.signature(fn).return_annotation in (str, "str")
    }


def key_of(fn: Callable[..., str], call_sid: str) -> str:
    args = {"call_sid": call_sid, "groups": GROUPS}
    params = inspect.signature(fn).parameters
    extra = {name: f"x-{name}" for name in params if name not in args}
    return fn(**{name: value for name, value in (args | extra).items() if name in params})


def test_every_key_of_a_call_shares_the_slot_of_its_stream(redis_cluster: LocalCluster) -> None:
    kinds = per_call_key_kinds()
    assert {"call_stream", "live_key", "ended_key", "stream_token_used", "live_stream"} <= set(
        kinds
    )
    node = redis_cluster.client(redis_cluster.ports[0])
    slots_used: set[int] = set()
    for _ in range(64):
        sid = new_sid("CA")
        group = keys.slot_group(sid, GROUPS)
        names = [key_of(fn, sid) for fn in kinds.values()] + [keys.wake_key(group, "replica-1")]
        slot_of = {name: int(node.execute_command("CLUSTER", "KEYSLOT", name)) for name in names}
        assert len(set(slot_of.values())) == 1, slot_of
        slots_used |= set(slot_of.values())
    assert len(slots_used) > 1  # calls do spread over slot groups (and so over nodes)


def test_slot_groups_spread_over_every_master(redis_cluster: LocalCluster) -> None:
    node = redis_cluster.client(redis_cluster.ports[0])
    owners: set[str] = set()
    ranges = node.execute_command("CLUSTER", "SLOTS")
    for group in range(GROUPS):
        slot = int(node.execute_command("CLUSTER", "KEYSLOT", f"fd:{{g{group:02d}}}:x"))
        owners |= {str(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1])}
    assert len(owners) == 3


@pytest.mark.crosses_slots_on_purpose
def test_a_cross_slot_command_is_refused(redis_cluster: LocalCluster) -> None:
    """What the suite's cross-slot check relies on: the node answers CROSSSLOT."""
    a, b = (keys.call_stream(new_sid("CA"), GROUPS) for _ in range(2))
    while keys.group_of_key(a) == keys.group_of_key(b):
        b = keys.call_stream(new_sid("CA"), GROUPS)
    node = redis_cluster.client(redis_cluster.ports[0])
    slot = int(node.execute_command("CLUSTER", "KEYSLOT", a))
    owner = next(r for r in node.execute_command("CLUSTER", "SLOTS") if r[0] <= slot <= r[1])
    with pytest.raises(ClusterCrossSlotError):  # the node's CROSSSLOT error
        redis_cluster.client(int(owner[2][1])).xread({a: "0", b: "0"})


@pytest.mark.crosses_slots_on_purpose
async def test_the_cluster_client_gets_cross_slot_refused(
    infra: Infra, redis_cluster: LocalCluster
) -> None:
    """Through the services' client too (redis-py refuses some commands itself, sends others
    and the node answers CROSSSLOT): the error surfaces and the suite's check sees it."""
    before = cross_slot_refusals(redis_cluster)
    redis = infra.connect()
    try:
        with pytest.raises((ClusterCrossSlotError, RedisClusterException)):
            await redis.xread({"fd:{g01}:call:a": "0", "fd:{g02}:call:b": "0"})
    finally:
        await redis.aclose()
    assert cross_slot_refusals(redis_cluster) == before + 1


async def test_mux_reads_calls_of_every_slot_group_one_lane_each(infra: Infra) -> None:
    redis = infra.connect()
    log = CallLog(redis, GROUPS)
    mux = StreamMux.from_url(infra.redis_url, cluster=True, block_ms=60_000)
    try:
        sids: dict[int, str] = {}
        while len(sids) < GROUPS:
            sid = new_sid("CA")
            sids.setdefault(keys.slot_group(sid, GROUPS), sid)
        subs = {sid: await mux.subscribe(log.key(sid)) for sid in sids.values()}
        for sid in sids.values():
            await log.append(ev.Dtmf(call_sid=sid, digit="7"))
        for sid, sub in subs.items():
            got = await asyncio.wait_for(sub.next(), 10)
            assert got is not None and isinstance(got[1], ev.Dtmf) and got[1].call_sid == sid
        assert mux.connections == GROUPS  # one blocking XREAD per slot group
    finally:
        await mux.close()
        await redis.aclose()


async def test_a_burst_waits_for_a_free_connection_instead_of_failing(infra: Infra) -> None:
    """Like the single-Redis pool, the cluster client queues commands beyond its connections
    (redis-py's own raises MaxConnectionsError)."""
    redis = connect(infra.redis_url, max_connections=2, cluster=True)
    key = "fd:{g03}:burst"
    try:
        await asyncio.gather(*(redis.xadd(key, {"n": str(n)}) for n in range(50)))
        assert await redis.xlen(key) == 50
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_append_then_publish_and_end_once_on_the_cluster(infra: Infra) -> None:
    redis = infra.connect()
    log = CallLog(redis, GROUPS)
    sid = new_sid("CA")
    try:
        entry_id = await log.append_then_publish(
            ev.TurnRequested(call_sid=sid, turn_id=1, text="hi"), "fd:test-work", {"call_sid": sid}
        )
        [(read_id, _)] = await log.entries(sid)
        assert read_id == entry_id
        items = await redis.xrange("fd:test-work")
        assert any(fields["call_sid"] == sid for _, fields in items)
        # the Lua scripts of call_end touch the call's ended, live and stream keys at once
        assert await take_live(log, sid, "replica-a", 5)
        ended = ev.CallEnded(call_sid=sid, reason="caller-hangup", duration_s=1.0)
        assert await end_call(log, ended, unless_live=True) is None  # live: refused
        assert await end_call(log, ended) is not None
        assert await end_call(log, ended) is None  # once
        assert not await take_live(log, sid, "replica-b", 5)
    finally:
        await redis.delete("fd:test-work")
        await redis.aclose()
