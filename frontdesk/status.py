"""`frontdesk status`: live calls per media replica, work-stream lag and recorder progress, in
the terminal, read from Redis (consumer groups) and the services' `/metrics`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console, Group
from rich.table import Table

from shared.bus.streams import connect
from shared.contract import keys
from shared.runtime.settings import get_settings

WORK_STREAMS = ((keys.TURNS, "brain"), (keys.TOOLS, "tools"), (keys.CALLS, "recorder"))


@dataclass
class Scrape:
    """One service replica's numbers (or why there are none)."""

    url: str
    samples: dict[str, float] = field(default_factory=dict)  # name{labels} summed by name
    by_label: dict[tuple[str, str], float] = field(default_factory=dict)  # (name, label value)
    error: str = ""


@dataclass
class GroupInfo:
    stream: str
    group: str
    consumers: int
    pending: int
    lag: int | None
    length: int


def parse_metrics(url: str, text: str, label: str = "pipeline") -> Scrape:
    """Sum the samples of a scrape by name, and by name and one label (pure)."""
    scrape = Scrape(url)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            scrape.samples[sample.name] = scrape.samples.get(sample.name, 0.0) + sample.value
            if label in sample.labels:
                key = (sample.name, sample.labels[label])
                scrape.by_label[key] = scrape.by_label.get(key, 0.0) + sample.value
    return scrape


async def scrape(http: httpx.AsyncClient, url: str) -> Scrape:
    """GET `url`/readyz (which also sets the replica's `frontdesk_ready` gauge: nothing else may
    be probing it) and then `url`/metrics; the error instead of numbers when it does not answer."""
    base = url.rstrip("/")
    try:
        await http.get(base + "/readyz", timeout=3)  # 503 when not ready: the gauge says so
        response = await http.get(base + "/metrics", timeout=3)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return Scrape(url, error=f"{type(exc).__name__}: {exc}"[:80])
    return parse_metrics(url, response.text)


async def group_info(redis: Redis, stream: str, group: str) -> GroupInfo | None:
    """XINFO GROUPS of one stream, for one group (None: no such stream or group yet)."""
    try:
        groups = await redis.xinfo_groups(stream)
        length = int(await redis.xlen(stream))
    except RedisError:
        return None
    for info in groups:
        if info.get("name") == group:
            lag = info.get("lag")
            return GroupInfo(
                stream,
                group,
                int(info.get("consumers") or 0),
                int(info.get("pending") or 0),
                None if lag is None else int(lag),
                length,
            )
    return None


def render(media: list[Scrape], workers: list[Scrape], groups: list[GroupInfo | None]) -> Group:
    """The three tables (pure)."""
    calls = Table(title="Live calls per media replica")
    for column in ("replica", "active calls", "by pipeline", "calls served"):
        calls.add_column(column)
    for s in media:
        if s.error:
            calls.add_row(s.url, "-", s.error, "-")
            continue
        pipelines = ", ".join(
            f"{value}={int(n)}"
            for (name, value), n in sorted(s.by_label.items())
            if name == "frontdesk_active_calls" and n
        )
        calls.add_row(
            s.url,
            str(int(s.samples.get("frontdesk_active_calls", 0))),
            pipelines or "-",
            str(int(s.samples.get("frontdesk_calls_total", 0))),
        )
    streams = Table(title="Work streams (Redis consumer groups)")
    for column in ("stream", "group", "consumers", "lag (undelivered)", "pending", "length"):
        streams.add_column(column)
    for info in groups:
        if info is not None:
            lag = "?" if info.lag is None else str(info.lag)
            streams.add_row(
                info.stream,
                info.group,
                str(info.consumers),
                lag,
                str(info.pending),
                str(info.length),
            )
    progress = Table(title="Workers")
    for column in ("replica", "in progress", "recorder calls", "recorder behind", "ready"):
        progress.add_column(column)
    for s in workers:
        if s.error:
            progress.add_row(s.url, "-", "-", "-", s.error)
            continue
        progress.add_row(
            s.url,
            str(int(s.samples.get("frontdesk_work_items_in_progress", 0))),
            str(int(s.samples.get("frontdesk_recorder_active_calls", 0))),
            str(int(s.samples.get("frontdesk_recorder_entries_behind", 0))),
            "yes" if s.samples.get("frontdesk_ready", 0) else "no",
        )
    return Group(calls, streams, progress)


async def snapshot(redis_url: str, media: list[str], workers: list[str]) -> Group:
    """Read everything once."""
    redis = connect(redis_url, max_connections=4, cluster=get_settings().redis_cluster)
    try:
        async with httpx.AsyncClient() as http:
            scrapes = await asyncio.gather(*(scrape(http, u) for u in [*media, *workers]))
        groups = [await group_info(redis, stream, group) for stream, group in WORK_STREAMS]
    finally:
        await redis.aclose()
    return render(list(scrapes[: len(media)]), list(scrapes[len(media) :]), groups)


def status(
    media: list[str] = typer.Option(  # noqa: B008
        ["http://127.0.0.1:8020"], "--media", help="Base URL of a media replica (repeat)."
    ),
    worker: list[str] = typer.Option(  # noqa: B008
        ["http://127.0.0.1:9101", "http://127.0.0.1:9102", "http://127.0.0.1:9103"],
        "--worker",
        help="Base URL of a worker's metrics port (repeat; default: `frontdesk up`'s).",
    ),
    watch: float = typer.Option(0.0, help="Refresh every this many seconds (0: once)."),
) -> None:
    """Live calls per replica, work-stream lag and recorder lag (Redis + /metrics)."""
    redis_url = get_settings().redis_url
    if not redis_url:
        typer.echo("REDIS_URL is not set", err=True)
        raise typer.Exit(2)
    console = Console()
    while True:
        console.print(asyncio.run(snapshot(redis_url, media, worker)))
        if watch <= 0:
            return
        time.sleep(watch)
