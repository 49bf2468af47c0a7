"""Google Calendar API v3 simulator: the subset FrontDesk uses (freeBusy, events.insert,
events.get, events.delete), with in-memory calendars, bearer-token checks and Google's JSON
error bodies, plus /sim/ endpoints to seed busy time, slow a calendar down and read events back.

Run: python -m sim.google_calendar_server --port 8091 [--access-tokens a,b] [--latency-ms N]

Calendars exist once created (`PUT /sim/calendars/{id}`, or by seeding busy time); like Google,
freeBusy reports an unknown calendar as an error entry and events calls answer 404.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
                 409: "ALREADY_EXISTS"}


class GoogleCalendarSimOptions(BaseModel):
    """Configuration of one simulator instance."""

    access_tokens: list[str] = Field(
        default=["sim-google-token"], description="Bearer tokens the API accepts."
    )
    latency_ms: float = Field(default=0, description="Delay added to every API request.")
    calendars: list[str] = Field(default=[], description="Calendar ids that exist at start.")


@dataclass
class SimCalendar:
    """One calendar: seeded busy blocks and events (deleted events stay, as `cancelled`)."""

    time_zone: str = "UTC"
    latency_ms: float = 0
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SimState:
    """Mutable per-app state (lives on app.state.sim)."""

    options: GoogleCalendarSimOptions
    calendars: dict[str, SimCalendar] = field(default_factory=dict)


class ApiError(Exception):
    """A Google-style JSON error response."""

    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "errors": [{"domain": "global", "reason": self.reason, "message": self.message}],
        }
        if self.code == 401:
            error["errors"][0] |= {"location": "Authorization", "locationType": "header"}
        if self.code in _STATUS_NAMES:
            error["status"] = _STATUS_NAMES[self.code]
        headers = {}
        if self.code == 401:
            headers["WWW-Authenticate"] = (
                'Bearer realm="https://accounts.google.com/", error="invalid_token"'
            )
        return JSONResponse({"error": error}, status_code=self.code, headers=headers)


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_instant(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ApiError(400, f"Missing {what} parameter.", "required")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(400, f"Bad Request: invalid {what}", "badRequest") from exc
    if moment.tzinfo is None:
        raise ApiError(400, f"Bad Request: {what} needs a time zone offset", "badRequest")
    return moment.astimezone(UTC)


def _zone(name: Any, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name or fallback))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApiError(400, f"Invalid time zone definition for {name}.", "invalid") from exc


def _event_time(value: Any, which: str, calendar: SimCalendar) -> datetime:
    """An event's start/end ({dateTime[, timeZone]} or {date}) as UTC."""
    if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
        raise ApiError(400, f"Missing {which} time.", "required")
    zone = _zone(value.get("timeZone"), calendar.time_zone)
    if value.get("date"):
        try:
            day = date.fromisoformat(str(value["date"]))
        except ValueError as exc:
            raise ApiError(400, "Invalid value for: date", "invalid") from exc
        return datetime.combine(day, time(0), zone).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]))
    except ValueError as exc:
        raise ApiError(400, "Invalid value for: dateTime", "invalid") from exc
    if moment.tzinfo is None:
        if not value.get("timeZone"):
            raise ApiError(400, "Missing time zone definition for start time.", "required")
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def calendar_busy(calendar: SimCalendar, lo: datetime, hi: datetime) -> list[dict[str, str]]:
    """Merged busy periods (seeded blocks and opaque live events) clipped to [lo, hi)."""
    spans = list(calendar.busy)
    for event in calendar.events.values():
        if event["status"] != "cancelled" and event.get("transparency") != "transparent":
            spans.append((event["_start"], event["_end"]))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((max(s, lo), min(e, hi)) for s, e in spans if s < hi and e > lo):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return [{"start": _rfc3339(s), "end": _rfc3339(e)} for s, e in merged]


def public_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event resource as the API returns it (internal `_` fields dropped)."""
    return {k: v for k, v in event.items() if not k.startswith("_")}


async def _api_request(request: Request, calendar_ids: list[str]) -> SimState:
    """Latency first (as a slow network/server would), then the bearer-token check."""
    sim = _state(request)
    delays = [sim.options.latency_ms] + [
        sim.calendars[c].latency_ms for c in calendar_ids if c in sim.calendars
    ]
    if max(delays) > 0:
        await asyncio.sleep(max(delays) / 1000)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or token not in sim.options.access_tokens:
        raise ApiError(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "authError",
        )
    return sim


def _calendar(sim: SimState, calendar_id: str) -> SimCalendar:
    calendar = sim.calendars.get(calendar_id)
    if calendar is None:
        raise ApiError(404, "Not Found", "notFound")
    return calendar


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "Parse Error", "parseError") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Parse Error", "parseError")
    return body


async def free_busy(request: Request) -> Response:
    try:
        raw = await request.json()
    except ValueError:
        raw = None
    listed = raw.get("items") if isinstance(raw, dict) else None
    items = [i for i in listed if isinstance(i, dict)] if isinstance(listed, list) else []
    ids = [str(item.get("id", "")) for item in items]
    sim = await _api_request(request, ids)  # auth before validation, as Google does
    body = await _json_body(request)
    if not isinstance(listed, list) or len(items) != len(listed):
        raise ApiError(400, "Missing items parameter.", "required")
    lo = _parse_instant(body.get("timeMin"), "timeMin")
    hi = _parse_instant(body.get("timeMax"), "timeMax")
    if hi <= lo:
        raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
    calendars: dict[str, Any] = {}
    for calendar_id in ids:
        calendar = sim.calendars.get(calendar_id)
        if calendar is None:
            calendars[calendar_id] = {
                "errors": [{"domain": "global", "reason": "notFound"}], "busy": []
            }
        else:
            calendars[calendar_id] = {"busy": calendar_busy(calendar, lo, hi)}
    return JSONResponse({"kind": "calendar#freeBusy", "timeMin": _rfc3339(lo),
                         "timeMax": _rfc3339(hi), "calendars": calendars})


async def insert_event(request: Request) -> Response:
    calendar_id = request.path_params["calendar_id"]
    sim = await _api_request(request, [calendar_id])
    calendar = _calendar(sim, calendar_id)
    body = await _json_body(request)
    event_id = body.get("id") or secrets.token_hex(13)
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise ApiError(400, "Invalid resource id value.", "invalid")
    if event_id in calendar.events:
        raise ApiError(409, "The requested identifier already exists.", "duplicate")
    start = _event_time(body.get("start"), "start", calendar)
    end = _event_time(body.get("end"), "end", calendar)
    if end < start:
        raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {
        **{k: v for k, v in body.items() if k in (
            "summary", "description", "location", "start", "end", "transparency",
            "extendedProperties", "attendees", "colorId")},
        "kind": "calendar#event",
        "etag": f'"{secrets.randbelow(10**16)}"',
        "id": event_id,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": now,
        "updated": now,
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "_start": start,
        "_end": end,
    }
    calendar.events[event_id] = event
    return JSONResponse(public_event(event))


async def get_event(request: Request) -> Response:
    calendar_id = request.path_params["calendar_id"]
    sim = await _api_request(request, [calendar_id])
    event = _calendar(sim, calendar_id).events.get(request.path_params["event_id"])
    if event is None:
        raise ApiError(404, "Not Found", "notFound")
    return JSONResponse(public_event(event))


async def delete_event(request: Request) -> Response:
    calendar_id = request.path_params["calendar_id"]
    sim = await _api_request(request, [calendar_id])
    event = _calendar(sim, calendar_id).events.get(request.path_params["event_id"])
    if event is None:
        raise ApiError(404, "Not Found", "notFound")
    if event["status"] == "cancelled":
        raise ApiError(410, "Resource has been deleted", "deleted")
    event["status"] = "cancelled"
    event["updated"] = _rfc3339(datetime.now(UTC))
    return Response(status_code=204)


def create_app(options: GoogleCalendarSimOptions | None = None) -> FastAPI:
    """Build the simulator app; its state lives on `app.state.sim` (a SimState)."""
    opts = options or GoogleCalendarSimOptions()
    app = FastAPI(title="FrontDesk Google Calendar simulator")
    app.state.sim = SimState(options=opts, calendars={c: SimCalendar() for c in opts.calendars})

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return exc.response()

    app.add_api_route("/calendar/v3/freeBusy", free_busy, methods=["POST"])
    events = "/calendar/v3/calendars/{calendar_id}/events"
    app.add_api_route(events, insert_event, methods=["POST"])
    app.add_api_route(events + "/{event_id}", get_event, methods=["GET"])
    app.add_api_route(events + "/{event_id}", delete_event, methods=["DELETE"])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/sim/calendars/{calendar_id}")
    async def put_calendar(calendar_id: str, request: Request) -> dict[str, Any]:
        """Create (or reconfigure) a calendar: {"time_zone": "...", "latency_ms": N}."""
        body = await _json_body(request) if await request.body() else {}
        calendar = _state(request).calendars.setdefault(calendar_id, SimCalendar())
        if "time_zone" in body:
            calendar.time_zone = _zone(body["time_zone"], "UTC").key
        if "latency_ms" in body:
            calendar.latency_ms = float(body["latency_ms"])
        return {"id": calendar_id, "time_zone": calendar.time_zone,
                "latency_ms": calendar.latency_ms}

    @app.post("/sim/calendars/{calendar_id}/busy")
    async def seed_busy(calendar_id: str, request: Request) -> dict[str, Any]:
        """Add busy blocks: {"start": ..., "end": ...} or a list of them (RFC 3339)."""
        body = await request.json()
        blocks = body if isinstance(body, list) else [body]
        if not all(isinstance(b, dict) for b in blocks):
            raise ApiError(400, "Busy blocks are objects with start and end.", "invalid")
        calendar = _state(request).calendars.setdefault(calendar_id, SimCalendar())
        for block in blocks:
            start = _parse_instant(block.get("start"), "start")
            end = _parse_instant(block.get("end"), "end")
            if end <= start:
                raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
            calendar.busy.append((start, end))
        return {"id": calendar_id, "busy": len(calendar.busy)}

    @app.get("/sim/calendars/{calendar_id}/events")
    async def list_events(calendar_id: str, request: Request) -> list[dict[str, Any]]:
        """Every event of the calendar, cancelled ones included (status tells)."""
        calendar = _state(request).calendars.get(calendar_id)
        if calendar is None:
            raise ApiError(404, "Not Found", "notFound")
        return [public_event(e) for e in calendar.events.values()]

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Google Calendar API v3 simulator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--access-tokens", default="sim-google-token",
                        help="Comma-separated bearer tokens the API accepts.")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--calendars", default="", help="Comma-separated calendar ids.")
    args = parser.parse_args(argv)
    options = GoogleCalendarSimOptions(
        access_tokens=[t for t in args.access_tokens.split(",") if t],
        latency_ms=args.latency_ms,
        calendars=[c for c in args.calendars.split(",") if c],
    )
    uvicorn.run(create_app(options), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
