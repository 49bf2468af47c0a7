"""The recordings store and retention against real servers: Postgres, a local directory, and
a real S3 HTTP server (moto's standalone server, installed from PyPI, spoken to over HTTP by
obstore exactly as it speaks to AWS S3 or MinIO)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import pytest_asyncio
from botocore.exceptions import EndpointConnectionError
from obstore.store import LocalStore
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontdesk.supervisor import free_port
from services.recorder.recordings.finish import finish_recording
from services.recorder.recordings.purge import purge_expired
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call, Tenant
from shared.recordings import wav
from shared.recordings.store import RecordingStore, final_key
from shared.runtime.settings import Settings
from tests.conditions import until
from tests.conftest import Infra

TONE = bytes([0x10]) * 1600


def frames(seconds: float) -> bytes:
    count = int(seconds * wav.RATE)
    return wav.interleave((TONE * (count // len(TONE) + 1))[:count], bytes([0xFF]) * count)


async def exercise(store: RecordingStore) -> None:
    """What media, recorder and gateway do with a store, in order."""
    tenant, sid = "t" + uuid.uuid4().hex[:8], "CA" + uuid.uuid4().hex
    await store.put_chunk(tenant, sid, 0, frames(1.0))
    await store.put_chunk(tenant, sid, 24000, frames(0.5))  # another replica, 2 s later
    live = await store.assemble(tenant, sid)
    assert live is not None
    parsed = wav.parse(live)
    assert parsed.duration_s == pytest.approx(3.5)
    assert not parsed.caller[8000:24000].any()  # silence between the streams
    done = await store.finish(tenant, sid)
    assert done is not None and done.key == final_key(tenant, sid)
    assert done.duration_s == pytest.approx(3.5) and done.size == len(live)
    assert await store.chunk_keys(tenant, sid) == []  # chunks gone once assembled
    again = await store.finish(tenant, sid)  # idempotent
    assert again == done
    assert await store.size(done.key) == len(live)
    assert await store.read(done.key, 10, 20) == live[10:20]
    await store.delete(tenant, sid)
    assert await store.size(done.key) is None
    assert await store.finish(tenant, sid) is None


async def test_local_store(tmp_path: Path) -> None:
    settings = Settings(recordings_store="local", recordings_dir=str(tmp_path / "rec"))
    store = RecordingStore.from_settings(settings)
    await exercise(store)
    assert list((tmp_path / "rec").iterdir()) == []  # no empty folders left behind


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A real S3 HTTP server (moto in server mode) on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )

        async def up() -> bool:
            assert proc.poll() is None, "moto server exited"
            try:
                client.create_bucket(Bucket="recordings")
            except EndpointConnectionError:  # not listening yet
                return False
            return True

        asyncio.run(until(up, "the S3 server", 60))
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_s3_store(s3_server: str) -> None:
    settings = Settings(
        recordings_store="s3",
        recordings_s3_bucket="recordings",
        recordings_s3_prefix="frontdesk",
        recordings_s3_endpoint=s3_server,
        recordings_s3_access_key_id="test",
        recordings_s3_secret_access_key="test",  # type: ignore[arg-type]
    )
    await exercise(RecordingStore.from_settings(settings))


@pytest_asyncio.fixture
async def sessions(private_infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(private_infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


async def test_retention_purge_deletes_only_expired_recordings(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    store = RecordingStore(LocalStore(tmp_path, mkdir=True))
    now = datetime.now(UTC)
    async with sessions() as session:
        short = Tenant(
            slug="rec-short-" + uuid.uuid4().hex[:6], name="Short", recording_retention_days=7
        )
        long = Tenant(
            slug="rec-long-" + uuid.uuid4().hex[:6], name="Long", recording_retention_days=90
        )
        session.add_all([short, long])
        await session.flush()
        calls = {
            "old_short": (short.id, now - timedelta(days=8)),
            "new_short": (short.id, now - timedelta(days=6)),
            "old_long": (long.id, now - timedelta(days=30)),
        }
        sids = {name: "CA" + uuid.uuid4().hex for name in calls}
        for name, (tenant_id, ended) in calls.items():
            session.add(
                Call(
                    call_sid=sids[name],
                    tenant_id=tenant_id,
                    status="completed",
                    started_at=ended - timedelta(minutes=2),
                    ended_at=ended,
                )
            )
        await session.commit()
    for name, (tenant_id, _) in calls.items():
        await store.put_chunk(tenant_id, sids[name], 0, frames(0.5))
        async with sessions() as session:
            call = await session.get(Call, sids[name])
        assert call is not None
        finished = await finish_recording(sessions, store, call)
        assert finished.recording_duration_s == pytest.approx(0.5)

    assert await purge_expired(sessions, store) == 1
    assert await purge_expired(sessions, store) == 0  # nothing left to do
    async with sessions() as session:
        rows = {name: await session.get(Call, sid) for name, sid in sids.items()}
    gone = rows["old_short"]
    assert gone is not None and gone.recording_key is None and gone.recording_purged_at
    assert gone.recording_duration_s is None
    assert await store.size(final_key(calls["old_short"][0], sids["old_short"])) is None
    for name in ("new_short", "old_long"):
        kept = rows[name]
        assert kept is not None and kept.recording_key is not None
        assert await store.size(kept.recording_key) is not None
    # A month later the 7-day tenant's other call goes too; the 90-day tenant's stays.
    assert await purge_expired(sessions, store, now + timedelta(days=30)) == 1
    async with sessions() as session:
        last = await session.get(Call, sids["old_long"])
    assert last is not None and last.recording_key is not None
