"""Call recordings through the running platform: a barge-in cuts the agent channel where the
clear was; a media replica killed with -9 mid-call leaves a playable recording up to the crash,
and the call goes on in the same recording; the API is tenant-scoped, serves byte ranges and
refuses bad input with a 4xx; the call API and the webhook carry the recording's URL."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
from sqlalchemy import update

from shared.bus.streams import CallLog, connect
from shared.codecs import ULAW_TO_PCM16
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call, Tenant
from shared.recordings import wav
from sim.twilio_caller import CallScript, SpeakOver, place_call
from sim.twilio_webhook import parse_twiml
from tests.conditions import until
from tests.conftest import Platform
from tests.e2e.media_pair import MediaPair, media_pair, serving_replica
from tests.e2e.recording_support import (
    fetch_recording,
    has_sound,
    platform_store,
    tenant_keys,
    wait_for_recording,
)
from tests.e2e.test_call_end_to_end import LINES, caller_options
from tests.e2e.test_conversation_timeline import PRICES, call_log_of, run
from tests.e2e.test_media_failover import reply_to_line

pytestmark = pytest.mark.e2e
__all__ = ["media_pair"]  # the fixture


async def test_barge_in_leaves_the_agent_channel_silent_from_the_clear(platform: Platform) -> None:
    interruption = "Actually, can I book for tomorrow morning instead"
    result = await run(
        platform,
        CallScript(lines=[PRICES, SpeakOver(interruption, after_ms=3000), "Great, thanks, bye."]),
    )
    assert result.clears == 1
    key, _ = await tenant_keys(platform)
    call = await wait_for_recording(platform, result.call_sid)
    log = await call_log_of(platform, result.call_sid)
    started = next(e for e in log if isinstance(e, ev.CallStarted))
    [barge] = [e for e in log if isinstance(e, ev.BargeIn)]
    recording = await fetch_recording(platform, key, result.call_sid)

    clear_s = barge.at - started.at  # on the call's clock, as the recording is
    assert has_sound(recording.agent, clear_s - 1.0, clear_s - 0.05)  # the agent was talking
    assert not has_sound(recording.agent, clear_s + 0.1, clear_s + 0.8)  # cut at the clear
    assert has_sound(recording.caller, clear_s - 1.5, clear_s + 0.3)  # ... by the caller
    assert has_sound(recording.agent, clear_s + 0.8, recording.duration_s)  # it answered after
    # Two channels, and the agent channel holds what the caller's phone played, no more.
    heard = np.frombuffer(result.agent_played_audio, dtype=np.uint8)
    heard_loud = int(np.count_nonzero(np.abs(ULAW_TO_PCM16[heard].astype(np.int32)) > 0))
    recorded_loud = int(np.count_nonzero(recording.agent))
    assert abs(recorded_loud - heard_loud) < 0.25 * wav.RATE, (recorded_loud, heard_loud)
    assert call.recording_duration_s == pytest.approx(recording.duration_s, abs=0.01)
    assert call.duration_s is not None
    assert abs(recording.duration_s - call.duration_s) < 1.0


async def test_media_kill_9_leaves_a_playable_recording_up_to_the_crash(
    platform: Platform, media_pair: MediaPair
) -> None:
    store = platform_store(platform)
    redis = connect(platform.infra.redis_url)
    log = CallLog(redis, 16)
    try:
        opts = caller_options(platform).model_copy(update={"gateway_url": media_pair.gateway})
        assert opts.call_sid is not None
        call = asyncio.create_task(place_call(opts, CallScript(lines=list(LINES))))
        entries = await reply_to_line(log, opts.call_sid, 2)
        started = next(e for _, e in entries if isinstance(e, ev.CallStarted))
        media_pair.kill(media_pair.label_of(serving_replica(entries)))
        killed_s = time.time() - started.at
        # What the dead replica left: a WAV that parses, up to a few seconds before the kill.
        left = await store.assemble(started.tenant_id, opts.call_sid)
        assert left is not None, "no chunk stored before the crash"
        crashed = wav.parse(left)
        assert crashed.duration_s >= killed_s - 3.0, (crashed.duration_s, killed_s)
        assert has_sound(crashed.caller, 0, crashed.duration_s)  # the first line is in it
        assert has_sound(crashed.agent, 0, crashed.duration_s)  # and the greeting
        result = await call
        assert result.error is None and result.resumes >= 1
        assert not any(parse_twiml(t).says for t in result.after_stream_twimls)  # said once
    finally:
        await redis.aclose()
    key, _ = await tenant_keys(platform)
    await wait_for_recording(platform, result.call_sid)
    whole = await fetch_recording(platform, key, result.call_sid)
    # One recording: what was stored before the crash, then the resumed stream after it.
    before = crashed.caller[: len(crashed.caller) - 3 * wav.RATE]
    assert np.array_equal(whole.caller[: len(before)], before)
    assert whole.duration_s > killed_s + 1.0
    assert has_sound(whole.caller, killed_s + 0.5, whole.duration_s)  # the last line, resumed


async def test_recording_api_scoping_ranges_and_bad_input(platform: Platform) -> None:
    result = await run(platform, CallScript(lines=[PRICES, "Great, thanks, bye."]))
    call = await wait_for_recording(platform, result.call_sid)
    dave, stranger = await tenant_keys(platform)
    path = f"/v1/calls/{result.call_sid}/recording"
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as api:
        mine = {"Authorization": f"Bearer {dave}"}
        whole = await api.get(path, headers=mine)
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        size = len(whole.content)
        assert int(whole.headers["content-length"]) == size == call.recording_bytes
        parsed = wav.parse(whole.content)
        assert parsed.duration_s == pytest.approx(call.recording_duration_s, abs=0.01)

        part = await api.get(path, headers=mine | {"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-1099/{size}"
        assert part.content == whole.content[100:1100]
        tail = await api.get(path, headers=mine | {"Range": "bytes=-64"})
        assert tail.status_code == 206 and tail.content == whole.content[-64:]
        beyond = await api.get(path, headers=mine | {"Range": f"bytes={size}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        bad = await api.get(path, headers=mine | {"Range": "seconds=1-2"})
        assert bad.status_code == 400 and "bytes=" in bad.json()["detail"]

        other = await api.get(path, headers={"Authorization": f"Bearer {stranger}"})
        assert other.status_code == 404  # another tenant's call does not exist for them
        assert (await api.get(path)).status_code == 401
        assert (await api.get("/v1/calls/not-a-sid/recording", headers=mine)).status_code == 422
        unknown = "/v1/calls/CA" + "0" * 32 + "/recording"
        assert (await api.get(unknown, headers=mine)).status_code == 404

        detail = (await api.get(f"/v1/calls/{result.call_sid}", headers=mine)).json()
        assert detail["recording_url"] == path
        assert detail["recording_duration_s"] == call.recording_duration_s
        listed = (await api.get("/v1/calls", headers=mine, params={"limit": 500})).json()
        assert any(c["call_sid"] == result.call_sid and c["recording_url"] == path for c in listed)


async def _set_recording(platform: Platform, enabled: bool) -> None:
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            await session.execute(
                update(Tenant)
                .where(Tenant.slug == "daves-barbershop")
                .values(recording_enabled=enabled)
            )
            await session.commit()
    finally:
        await engine.dispose()


async def _postcall_done(platform: Platform, call_sid: str) -> Call:
    engine = make_engine(platform.infra.database_url)
    found: list[Call] = []

    async def done() -> bool:
        async with make_sessions(engine)() as session:
            call = await session.get(Call, call_sid)
        if call is not None and call.postcall_done_at is not None:
            found.append(call)
            return True
        return False

    try:
        await until(done, f"post-call work of {call_sid}", 60)
    finally:
        await engine.dispose()
    return found[0]


async def test_disclosure_before_the_stream_and_a_tenant_without_recording(
    platform: Platform,
) -> None:
    script = CallScript(lines=[PRICES, "Great, thanks, bye."])
    recorded = await run(platform, script)
    said = parse_twiml(recorded.twiml)
    assert said.verbs == ["Say", "Connect"]  # the disclosure, then the stream (and recording)
    assert said.says == ["This call may be recorded."]

    await _set_recording(platform, False)
    try:
        plain = await run(platform, script)
    finally:
        await _set_recording(platform, True)
    assert parse_twiml(plain.twiml).verbs == ["Connect"]  # nothing to disclose
    call = await _postcall_done(platform, plain.call_sid)
    assert call.recording_key is None and call.recording_duration_s is None
    log = await call_log_of(platform, plain.call_sid)
    started = next(e for e in log if isinstance(e, ev.CallStarted))
    assert started.recording is False
    assert await platform_store(platform).chunk_keys(started.tenant_id, plain.call_sid) == []
    key, _ = await tenant_keys(platform)
    async with httpx.AsyncClient(
        base_url=platform.gateway, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        missing = await api.get(f"/v1/calls/{plain.call_sid}/recording")
        assert missing.status_code == 404 and "recording" in missing.json()["detail"]
        detail = (await api.get(f"/v1/calls/{plain.call_sid}")).json()
    assert detail["recording_url"] is None and detail["recording_duration_s"] is None
