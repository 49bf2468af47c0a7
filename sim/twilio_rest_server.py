"""Twilio REST simulator (shared/protocols/twilio-media-streams.md sections 8-10): the Calls
resource, driven by the real twilio library, and the "dialling" of each outbound call.

`POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (HTTP Basic `AccountSid:AuthToken`) answers
201 with the Call JSON, then dials in the background: signed status callbacks in order
(initiated, ringing, in-progress, then the final status with CallDuration; `SequenceNumber`
counts from 0), per the callee behind the number (`sim.restaurant_host`):

* answered: the signed `Url` webhook (Direction=outbound-api, CallStatus=in-progress), then the
  Media Stream as the callee, speaking its script (registered with the STT simulator);
  async AMD (`AsyncAmd=true`) posts `AnsweredBy` to `AsyncAmdStatusCallback` once the callee's
  first words end: `human`, or `machine_end_beep` after a machine greeting (then the agent's
  audio is the voicemail recording);
* busy / no-answer: only status callbacks, no stream.

`GET` / `POST .../Calls/{CallSid}.json` fetch and update a call (`Status=completed` hangs up,
`canceled` cancels a call not yet answered). Test hooks: `POST /sim/callee {number, behaviour}`
and `GET /sim/calls/{CallSid}` (what happened on a call).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import secrets
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from websockets.exceptions import ConnectionClosed

from sim.restaurant_host import DIRECTORY, Behaviour, Callee, HostRun, callee_for
from sim.twilio_call_model import CallEvent, TwilioCallerOptions
from sim.twilio_webhook import inbound_call_params, sign_request

API = "/2010-04-01/Accounts/{account}/Calls"
FINAL_SIP = {"completed": "200", "busy": "486", "no-answer": "480", "canceled": "487"}


class TwilioRestSimOptions(BaseModel):
    """One simulator instance."""

    account_sid: str = Field("AC" + "0" * 32, description="The account the API accepts.")
    auth_token: str = Field("sim-auth-token", description="Basic-auth password; signs webhooks.")
    stt_control_url: str | None = Field(None, description="STT simulator for callee words.")
    agent_control_urls: list[str] = Field(
        default_factory=list, description="Voice-agent simulators that hear the callee too."
    )
    ring_s: float = Field(0.3, description="Ringing before a callee answers or is busy.")
    no_answer_ring_s: float = Field(1.0, description="Ringing before no-answer (sim time).")
    amd_human_ms: int = Field(300, description="After the callee's first words: AMD human.")
    amd_machine_ms: int = Field(1200, description="After a machine greeting: the beep (AMD).")
    max_call_s: float = Field(90.0, description="Longest simulated conversation.")


class CalleeChoice(BaseModel):
    """`POST /sim/callee`: how a number behaves from now on."""

    number: str = Field(pattern=r"^\+[1-9]\d{7,14}$")
    behaviour: Behaviour


@dataclass
class SimCall:
    """One call the simulator placed."""

    sid: str
    params: dict[str, str]
    callee: Callee
    status: str = "queued"
    answered_by: str | None = None
    created: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    sequence: int = 0
    callbacks: list[dict[str, str]] = field(default_factory=list)
    amd_sent: dict[str, str] | None = None
    voicemail_bytes: int = 0
    hangup_by: str | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None
    run: HostRun | None = None

    @property
    def duration_s(self) -> int:
        if self.answered_at is None:
            return 0
        return math.ceil((self.ended_at or time.time()) - self.answered_at)


def _rfc2822(at: float | None) -> str | None:
    return formatdate(at, usegmt=False).replace("-0000", "+0000") if at else None


def call_json(account: str, call: SimCall) -> dict[str, Any]:
    """The Call resource as Twilio returns it."""
    uri = f"{API.format(account=account)}/{call.sid}"
    return {
        "sid": call.sid,
        "account_sid": account,
        "parent_call_sid": None,
        "date_created": _rfc2822(call.created),
        "date_updated": _rfc2822(time.time()),
        "to": call.params.get("To"),
        "to_formatted": call.params.get("To"),
        "from": call.params.get("From"),
        "from_formatted": call.params.get("From"),
        "phone_number_sid": "PN" + "0" * 32,
        "status": call.status,
        "start_time": _rfc2822(call.answered_at),
        "end_time": _rfc2822(call.ended_at),
        "duration": str(call.duration_s) if call.ended_at else None,
        "price": None,
        "price_unit": "USD",
        "direction": "outbound-api",
        "answered_by": call.answered_by,
        "api_version": "2010-04-01",
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": uri + ".json",
        "subresource_uris": {
            kind: f"{uri}/{kind.capitalize()}.json"
            for kind in ("notifications", "recordings", "streams")
        },
    }


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


class Dialler:
    """Plays out each call: ringing, the callee's behaviour, callbacks."""

    def __init__(self, options: TwilioRestSimOptions, directory: dict[str, Behaviour]) -> None:
        self.o = options
        self.directory = directory
        self.calls: dict[str, SimCall] = {}
        self.http = httpx.AsyncClient(timeout=15.0, trust_env=False)

    def place(self, params: dict[str, str]) -> SimCall:
        call = SimCall(
            "CA" + secrets.token_hex(16), params, callee_for(params["To"], self.directory)
        )
        self.calls[call.sid] = call
        call.task = asyncio.create_task(self._dial(call))
        return call

    async def _post(self, url: str, params: dict[str, str]) -> None:
        headers = {"X-Twilio-Signature": sign_request(self.o.auth_token, url, params)}
        try:
            await self.http.post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:  # Twilio logs a debugger warning and carries on
            print(f"twilio sim: callback {url} failed: {exc}", flush=True)

    async def _status(self, call: SimCall, status: str, event: str) -> None:
        call.status = status
        url = call.params.get("StatusCallback")
        wanted = call.params.get("_events", "completed").split(",")
        if not url or (event not in wanted and event != "completed"):
            return
        params = inbound_call_params(
            call_sid=call.sid,
            account_sid=self.o.account_sid,
            from_number=call.params["From"],
            to_number=call.params["To"],
            call_status=status,
            direction="outbound-api",
            extra={
                "Timestamp": _rfc2822(time.time()) or "",
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(call.sequence),
            },
        )
        if event == "completed":
            params |= {
                "CallDuration": str(call.duration_s),
                "Duration": str(math.ceil(call.duration_s / 60)),
                "SipResponseCode": FINAL_SIP.get(status, "500"),
            }
        call.sequence += 1
        call.callbacks.append(params)
        await self._post(url, params)

    async def _dial(self, call: SimCall) -> None:
        try:
            await self._status(call, "initiated", "initiated")
            await asyncio.sleep(self.o.ring_s / 2)
            await self._status(call, "ringing", "ringing")
            if call.callee.behaviour == "busy":
                await asyncio.sleep(self.o.ring_s / 2)
                final = "busy"
            elif not call.callee.answers:
                ring = min(self.o.no_answer_ring_s, float(call.params.get("Timeout", "60")))
                await asyncio.sleep(ring)
                final = "no-answer"
            else:
                await asyncio.sleep(self.o.ring_s)
                call.answered_at = time.time()
                await self._status(call, "in-progress", "answered")
                await self._converse(call)
                final = "completed"
        except asyncio.CancelledError:
            final = "canceled" if call.answered_at is None else "completed"
        call.ended_at = time.time()
        await self._status(call, final, "completed")

    async def _converse(self, call: SimCall) -> None:
        opts = TwilioCallerOptions(
            gateway_url=call.params["Url"],
            voice_path="",
            auth_token=self.o.auth_token,
            account_sid=self.o.account_sid,
            from_number=call.params["From"],
            to_number=call.params["To"],
            call_sid=call.sid,
            stt_control_url=self.o.stt_control_url,
            extra_control_urls=self.o.agent_control_urls,
            max_call_s=self.o.max_call_s,
            answer_timeout_s=20.0,
        )
        amd: list[asyncio.Task[None]] = []

        def on_event(event: CallEvent) -> None:
            if event.kind == "say" and not amd:
                amd.append(asyncio.create_task(self._amd(call, int(event.data["end_ms"]))))

        call.run = HostRun(opts, call.callee.script(), on_event)
        try:
            result = await call.run.run()
        finally:
            for task in amd:
                task.cancel()
        call.hangup_by, call.error = result.hangup_by, result.error
        if call.amd_sent is not None and call.callee.is_machine:
            call.voicemail_bytes = len(result.agent_played_audio) - int(
                call.amd_sent["_played_bytes"]
            )

    async def _amd(self, call: SimCall, first_words_end_ms: int) -> None:
        """Async AMD: the verdict once the callee's first words (a machine: its greeting and
        the pause before the beep) are over."""
        run = call.run
        assert run is not None and call.callee.answered_by is not None
        wait_ms = self.o.amd_machine_ms if call.callee.is_machine else self.o.amd_human_ms
        await asyncio.sleep(max(0.0, (first_words_end_ms + wait_ms - run.now_ms()) / 1000))
        url = call.params.get("AsyncAmdStatusCallback")
        if call.params.get("AsyncAmd", "").lower() != "true" or not url:
            return
        call.answered_by = call.callee.answered_by
        params = {
            "AccountSid": self.o.account_sid,
            "CallSid": call.sid,
            "AnsweredBy": call.answered_by,
            "MachineDetectionDuration": str(first_words_end_ms + wait_ms),
        }
        call.amd_sent = params | {"_played_bytes": str(run.playout.played_bytes)}
        await self._post(url, params)

    async def hang_up(self, call: SimCall, status: str) -> None:
        """REST update: end the call (completed) or cancel it before it is answered."""
        if call.task is None or call.task.done():
            return
        if status == "canceled" and call.answered_at is not None:
            return
        if call.run is not None and call.run.session is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await call.run.session.send_stop()
                await call.run.session.close()
        call.task.cancel()
        call.hangup_by = "api"


def _authorized(request: Request, options: TwilioRestSimOptions, account: str) -> bool:
    expected = f"{options.account_sid}:{options.auth_token}".encode()
    header = request.headers.get("Authorization", "")
    given = base64.b64decode(header[6:]) if header.startswith("Basic ") else b""
    return account == options.account_sid and secrets.compare_digest(given, expected)


def create_app(options: TwilioRestSimOptions | None = None) -> FastAPI:
    """The REST simulator app."""
    o = options or TwilioRestSimOptions()
    directory: dict[str, Behaviour] = dict(DIRECTORY)
    app = FastAPI(title="Twilio REST simulator")
    dialler = Dialler(o, directory)
    app.state.dialler = dialler

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/2010-04-01/Accounts/{account}/Calls.json", response_model=None)
    async def create_call(account: str, request: Request) -> JSONResponse:
        if not _authorized(request, o, account):
            return _error(401, 20003, "Authenticate")
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        params["_events"] = ",".join(str(v) for v in form.getlist("StatusCallbackEvent"))
        for name, code in (("To", 21201), ("From", 21603)):
            if not params.get(name, "").startswith("+"):
                return _error(400, code, f"Invalid '{name}' Phone Number: {params.get(name)}")
        if not params.get("Url") and not params.get("Twiml"):
            return _error(400, 21205, "Url parameter is required.")
        call = dialler.place(params)
        return JSONResponse(call_json(o.account_sid, call), status_code=201)

    @app.get("/2010-04-01/Accounts/{account}/Calls/{sid}.json", response_model=None)
    async def fetch_call(account: str, sid: str, request: Request) -> JSONResponse:
        if not _authorized(request, o, account):
            return _error(401, 20003, "Authenticate")
        call = dialler.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        return JSONResponse(call_json(o.account_sid, call))

    @app.post("/2010-04-01/Accounts/{account}/Calls/{sid}.json", response_model=None)
    async def update_call(account: str, sid: str, request: Request) -> JSONResponse:
        if not _authorized(request, o, account):
            return _error(401, 20003, "Authenticate")
        call = dialler.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        status = str((await request.form()).get("Status", ""))
        if status in ("completed", "canceled"):
            await dialler.hang_up(call, status)
        return JSONResponse(call_json(o.account_sid, call))

    @app.post("/sim/callee", response_model=None)
    async def set_callee(body: CalleeChoice) -> dict[str, str]:
        directory[body.number] = body.behaviour
        return {"number": body.number, "behaviour": body.behaviour}

    @app.get("/sim/calls/{sid}", response_model=None)
    async def sim_call(sid: str) -> JSONResponse:
        call = dialler.calls.get(sid)
        if call is None:
            return JSONResponse({"error": "unknown call"}, status_code=404)
        return JSONResponse(
            {
                "sid": call.sid,
                "to": call.params.get("To"),
                "behaviour": call.callee.behaviour,
                "status": call.status,
                "answered_by": call.answered_by,
                "callbacks": call.callbacks,
                "amd": call.amd_sent,
                "voicemail_bytes": call.voicemail_bytes,
                "hangup_by": call.hangup_by,
                "error": call.error,
            }
        )

    return app
