"""Live calls: the page, and its Server-Sent Events stream. Every `console_live_poll_s` the
stream reads the viewer's in-progress calls (Postgres) and each one's call log from Redis
(only the entries after the last one read), and sends the panel again when anything changed:
a new call, a transcript line, the turn's stage, a call that ended (it leaves the list)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from redis.exceptions import RedisError

from services.gateway.console import call_queries
from services.gateway.console.assets import templates
from services.gateway.console.live_view import LiveState, fold
from services.gateway.console.viewer import CurrentViewer, Viewer, resolve
from shared.bus.streams import CallLog
from shared.runtime.settings import Settings

router = APIRouter(prefix="/console/live", include_in_schema=False)
SIGNED_OUT = (
    '<p class="error" role="alert">Your session has ended. '
    '<a href="/console/sign-in">Sign in again</a>.</p>'
)
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class LiveBoard:
    """One viewer's live calls, folded incrementally from their logs."""

    def __init__(self, log: CallLog) -> None:
        self.log = log
        self.states: dict[str, LiveState] = {}
        self.cursors: dict[str, str] = {}

    async def refresh(self, rows: list[call_queries.CallRow]) -> list[tuple[object, LiveState]]:
        """Read what is new in each live call's log; the calls still live, newest first."""
        live: list[tuple[object, LiveState]] = []
        for row in rows:
            sid = row.call.call_sid
            state = self.states.setdefault(sid, LiveState())
            cursor = self.cursors.get(sid)
            start = "-" if cursor is None else f"({cursor}"
            entries = await self.log.entries(sid, start)
            if entries:
                self.cursors[sid] = entries[-1][0]
                fold((event for _, event in entries), state)
            if not state.ended:
                live.append((row, state))
        gone = set(self.states) - {row.call.call_sid for row in rows}
        for sid in gone:
            self.states.pop(sid, None)
            self.cursors.pop(sid, None)
        return live


def _panel(request: Request, viewer: Viewer, live: list[tuple[object, LiveState]]) -> str:
    template = templates.get_template("_live_panel.html")
    return template.render(request=request, viewer=viewer, live=live)


def _sse(event: str, html: str) -> str:
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n\n"


@router.get("")
async def live_page(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    """The live calls page (its panel fills from the event stream)."""
    return templates.TemplateResponse(
        request, "live.html", {"viewer": viewer, "page": "live", "live": []}
    )


@router.get("/stream")
async def live_stream(request: Request, viewer: CurrentViewer) -> StreamingResponse:
    """`text/event-stream` of `live` events, each the whole panel as HTML, sent when it
    changed; ends after `console_live_stream_s` (EventSource reconnects) or when the viewer's
    session stops being valid."""
    settings: Settings = request.app.state.settings
    board = LiveBoard(request.app.state.log)

    async def events() -> AsyncIterator[str]:
        last = ""
        deadline = time.monotonic() + settings.console_live_stream_s
        yield "retry: 1000\n\n"
        while time.monotonic() < deadline and not await request.is_disconnected():
            async with request.app.state.sessions() as session:
                if await resolve(request, session) is None:
                    yield _sse("live", SIGNED_OUT)
                    return
                rows = await call_queries.live_calls(session, viewer.tenant_id)
            try:
                html = _panel(request, viewer, await board.refresh(rows))
            except RedisError:
                html = last  # Redis is away: keep showing what was live, try again
            if html != last:
                last = html
                yield _sse("live", html)
            await asyncio.sleep(settings.console_live_poll_s)

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)
