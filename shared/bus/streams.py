"""The stream bus: append to a call's log, read it back, and publish work items.

Multiplexed live reads are in ``shared.bus.mux``; consumer groups in ``shared.bus.work_queue``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.contract import keys
from shared.contract.events import Event, UnknownEvent, decode, encode
from shared.runtime.telemetry import current_traceparent

RECONNECT_RETRIES = 4
"""Reconnects of one command after a connection error (backoff 20 ms doubling, capped at
0.5 s): a pooled connection that Redis closed while restarting is replaced, not reported.
Longer outages are the callers' to wait out (``shared.runtime.outage``)."""


def _reconnecting() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.5), RECONNECT_RETRIES)


def connect(
    url: str,
    *,
    max_connections: int = 64,
    socket_timeout: float = 5.0,
    cluster: bool = False,
    decode: bool = True,
) -> Redis:
    """A Redis client with string responses (bytes without `decode`); `unix://` URLs work for
    embedded Redis.

    Its pool waits (up to the socket timeout) for a free connection when all are busy, instead
    of failing, so a burst of work queues briefly rather than erroring. A command that meets a
    dropped connection reconnects and is sent again (RECONNECT_RETRIES). With `cluster`, `url`
    names any node of a Redis Cluster and the client is redis-py's cluster client
    (`cluster_client`).
    """
    if cluster:
        return cluster_client(
            url, max_connections=max_connections, socket_timeout=socket_timeout, decode=decode
        )
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=decode,
        max_connections=max_connections,
        socket_timeout=socket_timeout,
        timeout=socket_timeout,
        retry=_reconnecting(),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


class _StreamCluster(RedisCluster):
    """redis-py's cluster client, with two changes.

    - Commands beyond `max_connections` wait for a free connection, as with the single-Redis
      `BlockingConnectionPool`, instead of failing (redis-py's raises MaxConnectionsError when
      a node's connections are all busy). At most `max_connections` commands are in flight per
      client, so no node ever needs more.
    - XREAD / XREADGROUP are routed from their own arguments: redis-py resolves the keys of a
      command with movable keys by asking the server (`COMMAND GETKEYS`), measured as two extra
      commands for every read (`INFO commandstats`). Their keys are the first half of what
      follows STREAMS; keys of several slots go the library's way (the node says CROSSSLOT).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = asyncio.Semaphore(int(kwargs.get("max_connections", 100)))

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            return await super().execute_command(*args, **kwargs)

    async def _determine_slot(self, command: str, *args: Any) -> int:
        keys = _stream_keys(command, args)
        if keys:
            slots = {self.keyslot(key) for key in keys}
            if len(slots) == 1:
                return slots.pop()
        return await super()._determine_slot(command, *args)


def _stream_keys(command: str, args: tuple[Any, ...]) -> list[Any]:
    """The stream keys of an XREAD / XREADGROUP (empty for any other command)."""
    name = command.upper() if isinstance(command, str) else bytes(command).decode().upper()
    if name not in ("XREAD", "XREADGROUP"):
        return []
    start = 3 if name == "XREADGROUP" else 0  # GROUP <group> <consumer> come first
    for index in range(start, len(args)):
        arg = args[index]
        word = arg.decode() if isinstance(arg, bytes) else str(arg)
        if word.upper() == "STREAMS":
            rest = args[index + 1 :]
            return list(rest[: len(rest) // 2])
    return []


def cluster_client(
    url: str, *, max_connections: int, socket_timeout: float, decode: bool = True
) -> Redis:
    """redis-py's cluster client (at most `max_connections` commands in flight), which
    follows MOVED/ASK and routes each command to the node owning its keys' slot. A command
    whose keys span slots fails (redis-py refuses some itself; the node answers CROSSSLOT to
    the others): the key layout of ``shared.contract.keys`` keeps every multi-key command of
    the platform in one slot.

    It implements the same command methods as `Redis` but is not a subclass; it is typed as
    `Redis` so the rest of the code has one client type. Cluster-aware code tests
    ``isinstance(client, RedisCluster)`` (see `CallLog.append_then_publish`)."""
    client = _StreamCluster.from_url(
        url,
        decode_responses=decode,
        max_connections=max_connections,
        socket_timeout=socket_timeout,
        retry=_reconnecting(),
        retry_on_error=[RedisConnectionError],
    )
    return cast(Redis, client)


def connect_blocking(url: str, block_ms: int, *, cluster: bool = False) -> Redis:
    """A one-connection client for blocking reads (socket timeout longer than the block); with
    `cluster`, one connection per node (a lane's reads all go to one node: one slot group)."""
    if cluster:
        return cluster_client(url, max_connections=1, socket_timeout=block_ms / 1000 + 10)
    return Redis.from_url(
        url,
        decode_responses=True,
        max_connections=1,
        socket_timeout=block_ms / 1000 + 10,
        retry=_reconnecting(),
        retry_on_error=[RedisConnectionError],
    )


def _traced(event: Event) -> Event:
    """`event` stamped with the current trace context (unless it carries one)."""
    if event.traceparent is None:
        tp = current_traceparent()
        if tp is not None:
            return event.model_copy(update={"traceparent": tp})
    return event


class CallLog:
    """Appends events to per-call streams and reads them back."""

    def __init__(self, redis: Redis, slot_groups: int) -> None:
        self.redis = redis
        self.slot_groups = slot_groups

    def key(self, call_sid: str) -> str:
        """Stream key of a call."""
        return keys.call_stream(call_sid, self.slot_groups)

    async def append(self, event: Event) -> str:
        """XADD an event to its call's stream, stamping the current trace context."""
        fields: Any = encode(_traced(event))
        entry_id = await self.redis.xadd(self.key(event.call_sid), fields)
        return str(entry_id)

    async def append_then_publish(self, event: Event, stream: str, fields: dict[str, str]) -> str:
        """Append `event`, then publish a work item about it, in one round trip: both XADDs
        go down one connection in order, so a worker never sees the item before the event.
        Returns the event's entry id.

        On a Redis Cluster the two streams live on different nodes and a cluster pipeline
        sends each node's part concurrently, so the order is kept by awaiting the append
        first (two round trips)."""
        if isinstance(self.redis, RedisCluster):
            entry_id = await self.append(event)
            await self.publish(stream, fields)
            return entry_id
        pipe = self.redis.pipeline(transaction=False)
        payload: Any = dict(fields)
        pipe.xadd(self.key(event.call_sid), encode(_traced(event)))  # type: ignore[arg-type]
        pipe.xadd(stream, payload)
        entry_id, _ = await pipe.execute()
        return str(entry_id)

    async def publish(self, stream: str, fields: dict[str, str]) -> str:
        """XADD a work item to a shared work stream (turns, tools, calls)."""
        payload: Any = dict(fields)
        entry_id = await self.redis.xadd(stream, payload)
        return str(entry_id)

    async def entries(
        self,
        call_sid: str,
        start: str = "-",
        end: str = "+",
        skip: frozenset[str] = frozenset(),
    ) -> list[tuple[str, Event]]:
        """The call's events between two ids (inclusive), minus unparseable ones and `skip`."""
        raw: Any = await self.redis.xrange(self.key(call_sid), start, end)
        return decode_entries(raw, skip)

    async def expire(self, call_sid: str, ttl_s: int) -> None:
        """Let a durably recorded call stream expire."""
        await self.redis.expire(self.key(call_sid), ttl_s)


def decode_entries(
    raw: list[tuple[str, dict[Any, Any]]],
    skip: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
) -> list[tuple[str, Event]]:
    """Decode XRANGE/XREAD entries; unknown ones are skipped (newer writers may add types), and
    so are the types in `skip` and, with `only`, the types not in it, without parsing their
    JSON (a reader's hot path)."""
    out: list[tuple[str, Event]] = []
    for entry_id, fields in raw:
        kind = fields.get("type")
        if (skip and kind in skip) or (only is not None and kind not in only):
            continue
        try:
            out.append((entry_id, decode(fields)))
        except UnknownEvent:
            continue
    return out


def stream_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a comparable tuple."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
