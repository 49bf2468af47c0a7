"""`GET /v1/calls/{call_sid}/recording`: the call's recording as µ-law stereo WAV (caller left,
agent right), tenant-scoped, with HTTP Range so a browser's `<audio>` can seek. A call still in
progress (or whose recording is not assembled yet) is served from the chunks stored so far."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from obstore.exceptions import BaseError as StoreError
from sqlalchemy import select

from services.gateway.admin.auth import TenantId
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, not_found
from services.gateway.calls_api.byte_ranges import RangeError, parse_range
from services.gateway.calls_api.call_routes import CallSid
from shared.db.models import Call
from shared.recordings.store import RecordingStore

router = APIRouter(prefix="/v1/calls", tags=["calls"], responses=AUTH_ERRORS)

PIECE = 64 * 1024
"""Bytes read from the store per streamed piece."""


def recordings(request: Request) -> RecordingStore:
    """The gateway's recordings store (made on first use)."""
    state = request.app.state
    if getattr(state, "recordings", None) is None:
        state.recordings = RecordingStore.from_settings(state.settings)
    store: RecordingStore = state.recordings
    return store


@router.get(
    "/{call_sid}/recording",
    summary="The call's recording (WAV)",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The whole recording."},
        206: {"content": {"audio/wav": {}}, "description": "The requested byte range."},
        **error_doc(400, "Malformed Range header."),
        **error_doc(404, "No such call for this tenant, or it has no recording."),
        **error_doc(416, "The range starts past the end of the recording."),
        **error_doc(503, "The recordings store cannot be reached."),
    },
)
async def get_recording(
    request: Request,
    tenant_id: TenantId,
    session: Session,
    call_sid: CallSid,
    range_header: str | None = Header(None, alias="Range", include_in_schema=False),
) -> Response:
    """Caller on the left channel, agent on the right, on the call's clock; agent audio ends
    where a barge-in cleared it. `Range: bytes=...` gets a 206 with that part."""
    call = await session.scalar(
        select(Call).where(Call.call_sid == call_sid, Call.tenant_id == tenant_id)
    )
    if call is None:
        raise not_found("call")
    return await serve_recording(request, call, range_header)


async def serve_recording(request: Request, call: Call, range_header: str | None) -> Response:
    """The recording of a call the caller may see (also the console's audio player)."""
    if call.recording_purged_at is not None:
        raise not_found("recording (deleted after the tenant's retention period)")
    store = recordings(request)
    try:
        if call.recording_key is not None:
            size = await store.size(call.recording_key)
            if size is None:
                raise not_found("recording")
            return _serve(store, call.recording_key, size, range_header)
        live = await store.assemble(call.tenant_id, call.call_sid)  # in progress: chunks so far
    except (StoreError, OSError) as exc:
        raise HTTPException(503, f"recordings store unavailable: {type(exc).__name__}") from exc
    if live is None:
        raise not_found("recording")
    return _serve_bytes(live, range_header)


def _headers(size: int, span: tuple[int, int] | None) -> dict[str, str]:
    start, end = span if span is not None else (0, size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "Cache-Control": "private, no-store",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return headers


def _span(range_header: str | None, size: int) -> tuple[int, int] | None:
    try:
        return parse_range(range_header, size)
    except RangeError as exc:
        headers = {"Content-Range": f"bytes */{size}"} if exc.status == 416 else None
        raise HTTPException(exc.status, str(exc), headers=headers) from exc


def _serve(store: RecordingStore, key: str, size: int, range_header: str | None) -> Response:
    span = _span(range_header, size)
    start, end = span if span is not None else (0, size)

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(start, end, PIECE):
            yield await store.read(key, at, min(end, at + PIECE))

    return StreamingResponse(
        pieces(),
        status_code=206 if span is not None else 200,
        media_type="audio/wav",
        headers=_headers(size, span),
    )


def _serve_bytes(data: bytes, range_header: str | None) -> Response:
    span = _span(range_header, len(data))
    start, end = span if span is not None else (0, len(data))
    return Response(
        data[start:end],
        status_code=206 if span is not None else 200,
        media_type="audio/wav",
        headers=_headers(len(data), span),
    )
