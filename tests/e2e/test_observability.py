"""Issue 14 end to end: during one call every service's /metrics moves (active calls 1 -> 0,
the turn stage histograms count the call's turns), and the call's spans reach an OTLP
receiver from all five services under one trace id."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from frontdesk.supervisor import SERVICES
from shared.contract import keys
from sim.twilio_caller import CallScript, place_call
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import LINES, caller_options, wait_for_record
from tests.otlp_receiver import RunningReceiver

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(platform: Platform, service: str) -> Samples:
    port = platform.stack.ports.metrics_port(service)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def wait_metric(
    platform: Platform,
    service: str,
    check: Callable[[Samples], bool],
    what: str,
    timeout_s: float = 30,
) -> Samples:
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await scrape(platform, service)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"{service}: {what} not seen in {timeout_s}s"
        await asyncio.sleep(0.05)


def stage_count(samples: Samples, stage: str) -> float:
    return value(samples, "frontdesk_turn_stage_seconds_count", stage=stage)


async def test_metrics_of_every_service_follow_one_call(platform: Platform) -> None:
    before = {s: await scrape(platform, s) for s in SERVICES}
    # Calls of earlier tests may still be live (a killed replica's call the recorder still
    # follows): the gauges are counted from what they were before this call (0 when alone).
    media_before = value(before["media"], "frontdesk_active_calls", pipeline="cascade")
    recorder_before = value(before["recorder"], "frontdesk_recorder_active_calls")
    call = asyncio.create_task(place_call(caller_options(platform), CallScript(lines=LINES)))

    def media_active(samples: Samples) -> float:
        return value(samples, "frontdesk_active_calls", pipeline="cascade")

    def recorder_active(samples: Samples) -> float:
        return value(samples, "frontdesk_recorder_active_calls")

    await wait_metric(
        platform, "media", lambda s: media_active(s) >= media_before + 1, "active calls +1"
    )
    await wait_metric(
        platform,
        "recorder",
        lambda s: recorder_active(s) >= recorder_before + 1,
        "recorder following +1",
    )
    result = await call
    assert result.error is None, result.error
    await wait_for_record(platform.infra.database_url, result.call_sid)
    media = await wait_metric(
        platform, "media", lambda s: media_active(s) <= media_before, "active calls back"
    )
    recorder = await wait_metric(
        platform,
        "recorder",
        lambda s: recorder_active(s) <= recorder_before,
        "recorder following back",
    )
    brain = await scrape(platform, "brain")
    tools = await scrape(platform, "tools")
    gateway = await scrape(platform, "gateway")

    def grew(after: Samples, service: str, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before[service], name, **labels)

    turns = len(LINES)
    # media: one call; the caller's turns through endpointing, STT finals and first audio
    assert grew(media, "media", "frontdesk_calls_total", pipeline="cascade") == 1
    for stage, count in {
        "endpointing": turns,
        "first_audio": turns,
        "greeting_first_frame": 1,
    }.items():
        observed = stage_count(media, stage) - stage_count(before["media"], stage)
        assert observed == count, f"{stage}: {observed} observations for {count} turns"
    assert (
        stage_count(media, "final_transcript") - stage_count(before["media"], "final_transcript")
        >= turns
    )
    assert (
        grew(
            media,
            "media",
            "frontdesk_websocket_sessions_total",
            route="/twilio/stream",
            outcome="normal",
        )
        == 1
    )
    # brain: one LLM first token per turn, one work item per turn
    assert (
        stage_count(brain, "llm_first_token") - stage_count(before["brain"], "llm_first_token")
        == turns
    )
    assert (
        grew(brain, "brain", "frontdesk_work_items_total", stream=keys.TURNS, outcome="ok") == turns
    )
    # tools: the business-info lookup the script triggers
    assert (
        grew(
            tools,
            "tools",
            "frontdesk_tool_executions_total",
            tool="get_business_info",
            outcome="ok",
        )
        == 1
    )
    # recorder: entries committed, batches timed, nothing left behind
    assert grew(recorder, "recorder", "frontdesk_recorder_entries_total") > 0
    assert grew(recorder, "recorder", "frontdesk_recorder_batch_write_seconds_count") > 0
    assert value(recorder, "frontdesk_recorder_entries_behind") <= value(
        before["recorder"], "frontdesk_recorder_entries_behind"
    )
    # gateway: the voice webhook, labelled by its route template
    assert any(
        name == "frontdesk_http_requests_total" and dict(labels).get("route") == "/twilio/voice"
        for name, labels in gateway
    ), sorted(
        {
            dict(labels).get("route")
            for name, labels in gateway
            if name == "frontdesk_http_requests_total"
        }
    )
    # standard process metrics everywhere
    for service, samples in {"media": media, "brain": brain, "gateway": gateway}.items():
        assert value(samples, "process_resident_memory_bytes") > 0, service


async def test_worker_health_and_readiness(platform: Platform) -> None:
    async with httpx.AsyncClient() as http:
        for service in SERVICES:
            port = platform.stack.ports.metrics_port(service)
            live = await http.get(f"http://127.0.0.1:{port}/healthz")
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert live.status_code == 200, service
            assert ready.status_code == 200, (service, ready.text)
            assert ready.json()["checks"]["redis"] == "ok", service


async def test_one_call_is_one_trace_over_otlp(platform: Platform, otlp: RunningReceiver) -> None:
    # Earlier calls cached every short segment this script's replies open with (the phrase
    # cache): forget them, so this call's replies go to TTS and its trace holds tts.request.
    redis = platform.infra.connect()
    try:
        async for key in redis.scan_iter(match="fd:greeting:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()
    result = await place_call(caller_options(platform), CallScript(lines=LINES))
    assert result.error is None, result.error
    await wait_for_record(platform.infra.database_url, result.call_sid)
    deadline = time.monotonic() + 30
    wanted = {f"frontdesk-{s}" for s in SERVICES}
    # media.stream ends with the stream, the recorder's last batch after it: wait for both
    expected = {"call", "media.stream", "stt.connect", "tts.request", "turn", "llm.request"}
    expected |= {"recorder.batch"}
    while True:
        roots = [
            s
            for s in otlp.receiver.snapshot()
            if s.name == "call" and s.attributes.get("call.sid") == result.call_sid
        ]
        spans = otlp.receiver.of_trace(roots[0].trace_id) if roots else []
        services = {s.service for s in spans}
        names = {s.name for s in spans}
        if services >= wanted and names >= expected:
            break
        assert time.monotonic() < deadline, f"the call's trace: {services}, {names}"
        await asyncio.sleep(0.1)
    # log lines of the call's work carry its sid, tenant and trace id
    lines = [
        json.loads(line)
        for line in (platform.stack.log_dir / "media.log").read_text().splitlines()
        if line.startswith("{") and result.call_sid in line
    ]
    assert lines
    assert all(line.get("call_sid") == result.call_sid for line in lines)
    assert any(
        line.get("trace_id") == roots[0].trace_id and line.get("tenant_id") for line in lines
    ), lines
    llm = [s for s in spans if s.name == "llm.request"]
    assert llm and all(int(str(s.attributes["gen_ai.usage.output_tokens"])) > 0 for s in llm)
    assert any(s.name.startswith("tool ") and s.service == "frontdesk-tools" for s in spans)


async def test_status_reads_the_running_platform(platform: Platform) -> None:
    from rich.console import Console

    from frontdesk.status import snapshot

    ports = platform.stack.ports
    view = await snapshot(
        platform.infra.redis_url,
        [f"http://127.0.0.1:{ports.media}"],
        [f"http://127.0.0.1:{ports.metrics_port('recorder')}"],
    )
    console = Console(record=True, width=200)
    console.print(view)
    out = console.export_text()
    for stream, group in ((keys.TURNS, "brain"), (keys.TOOLS, "tools"), (keys.CALLS, "recorder")):
        assert stream in out and group in out, out
    assert f"http://127.0.0.1:{ports.media}" in out
    assert "Error" not in out, out  # both replicas answered
