"""The recordings store: chunks a media replica writes as the call goes, and the one WAV per
call the recorder assembles from them. A local directory by default, S3 (or any S3-compatible
server) in real deployments; both through obstore.

Layout (keys under the store's root):
    <tenant>/<CallSid>/chunks/<start frame, 12 digits>.ul2   interleaved µ-law stereo frames
    <tenant>/<CallSid>.wav                                   the finished recording
A chunk's name is its place on the call's clock (frame 0 = the call's start), so chunks written
by two replicas of one call (after a crash or a drain) assemble into one timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, ObjectStore, S3Store

from shared.recordings import wav
from shared.runtime.settings import Settings

CHUNK_SUFFIX = ".ul2"


@dataclass(frozen=True)
class Finished:
    """A call's assembled recording."""

    key: str
    frames: int
    size: int

    @property
    def duration_s(self) -> float:
        return round(self.frames / wav.RATE, 3)


def _tenant(tenant_id: str | None) -> str:
    return tenant_id or "_"


def final_key(tenant_id: str | None, call_sid: str) -> str:
    """Where a call's finished WAV lives."""
    return f"{_tenant(tenant_id)}/{call_sid}.wav"


def chunk_prefix(tenant_id: str | None, call_sid: str) -> str:
    return f"{_tenant(tenant_id)}/{call_sid}/chunks/"


class RecordingStore:
    """Chunks in, one WAV out; ranged reads for the API; deletes for retention."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingStore:
        """The store `RECORDINGS_STORE` names: `local` (RECORDINGS_DIR) or `s3`."""
        if settings.recordings_store == "s3":
            client: dict[str, bool] = {
                "allow_http": settings.recordings_s3_endpoint.startswith("http://")
            }
            config: dict[str, str] = {"region": settings.recordings_s3_region}
            if settings.recordings_s3_endpoint:
                config["endpoint"] = settings.recordings_s3_endpoint
            if settings.recordings_s3_access_key_id:
                config["access_key_id"] = settings.recordings_s3_access_key_id
                config["secret_access_key"] = (
                    settings.recordings_s3_secret_access_key.get_secret_value()
                )
            store: ObjectStore = S3Store(
                settings.recordings_s3_bucket,
                prefix=settings.recordings_s3_prefix or None,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
            )
            return cls(store)
        root = Path(settings.recordings_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(LocalStore(root, mkdir=True, automatic_cleanup=True))

    # ---- written during the call ------------------------------------------------------
    async def put_chunk(
        self, tenant_id: str | None, call_sid: str, start_frame: int, frames: bytes
    ) -> None:
        """Store interleaved stereo frames that start at `start_frame` on the call's clock."""
        key = f"{chunk_prefix(tenant_id, call_sid)}{start_frame:012d}{CHUNK_SUFFIX}"
        await obstore.put_async(self.store, key, frames)

    async def chunk_keys(self, tenant_id: str | None, call_sid: str) -> list[tuple[int, str]]:
        """(start frame, key) of every stored chunk of the call, in time order."""
        found: list[tuple[int, str]] = []
        async for batch in obstore.list(self.store, chunk_prefix(tenant_id, call_sid)):
            for meta in batch:
                name = meta["path"].rsplit("/", 1)[-1]
                if name.endswith(CHUNK_SUFFIX) and name[: -len(CHUNK_SUFFIX)].isdigit():
                    found.append((int(name[: -len(CHUNK_SUFFIX)]), meta["path"]))
        return sorted(found)

    async def assemble(self, tenant_id: str | None, call_sid: str) -> bytes | None:
        """The WAV the stored chunks make now (None without chunks): what a crash leaves."""
        keys = await self.chunk_keys(tenant_id, call_sid)
        if not keys:
            return None
        chunks = [
            (start, bytes(await (await obstore.get_async(self.store, key)).bytes_async()))
            for start, key in keys
        ]
        frames = wav.join_chunks(chunks)
        return wav.header(len(frames) // wav.FRAME_BYTES) + frames

    # ---- after the call ---------------------------------------------------------------
    async def finish(self, tenant_id: str | None, call_sid: str) -> Finished | None:
        """Assemble the chunks into the call's WAV, then drop the chunks. Idempotent: run
        again after a crash between the two steps, it rebuilds the same file; with no chunks
        left it reports the WAV already there (None when the call has no recording)."""
        key = final_key(tenant_id, call_sid)
        data = await self.assemble(tenant_id, call_sid)
        if data is None:
            size = await self.size(key)
            if size is None:
                return None
            return Finished(key, (size - wav.HEADER_BYTES) // wav.FRAME_BYTES, size)
        await obstore.put_async(self.store, key, data)
        await obstore.delete_async(
            self.store, [k for _, k in await self.chunk_keys(tenant_id, call_sid)]
        )
        return Finished(key, (len(data) - wav.HEADER_BYTES) // wav.FRAME_BYTES, len(data))

    async def size(self, key: str) -> int | None:
        """Bytes of the object at `key`, None when there is none."""
        try:
            meta = await obstore.head_async(self.store, key)
        except (NotFoundError, FileNotFoundError):
            return None
        return int(meta["size"])

    async def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object at `key`."""
        return bytes(await obstore.get_range_async(self.store, key, start=start, end=end))

    async def delete(self, tenant_id: str | None, call_sid: str) -> None:
        """Remove the call's WAV and any chunks (retention)."""
        keys = [k for _, k in await self.chunk_keys(tenant_id, call_sid)]
        keys.append(final_key(tenant_id, call_sid))
        try:
            await obstore.delete_async(self.store, keys)
        except (NotFoundError, FileNotFoundError):
            for key in keys:  # a backend that refuses a batch with a missing key
                try:
                    await obstore.delete_async(self.store, key)
                except (NotFoundError, FileNotFoundError):
                    continue
