"""`frontdesk call`: place one call against a running platform (`frontdesk up`) with a caller
who speaks (synthesised by an Aura-compatible TTS, normally the speech service), print the
conversation as the platform heard it, and save both sides to a stereo WAV."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import NoReturn

import httpx
import typer
from rich.console import Console

from frontdesk.up_state import read_state
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.runtime.settings import get_settings
from sim.call_audio import voice_to_voice_ms, write_stereo_wav
from sim.conversation_view import print_live
from sim.twilio_call_model import CallResult
from sim.twilio_caller import CallScript, TwilioCallerOptions, place_call
from sim.twilio_webhook import TwimlError, new_sid, parse_twiml

console = Console()
HEARD_WAIT_S = 30.0
HEALTH_TIMEOUT_S = 5.0
DEMO_NUMBERS = (
    "+441632960001 (Dave's Barbershop)",
    "+441632960002 (Sunrise Dental Clinic)",
    "+441632960003 (Luigi's Trattoria)",
)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


async def _run_call(options: TwilioCallerOptions, lines: list[str], redis_url: str) -> CallResult:
    """The call, with the platform's view printed live from its call log."""
    settings = get_settings()
    log = CallLog(connect(redis_url), settings.stream_slot_groups)
    mux = StreamMux.from_url(redis_url)
    live = asyncio.create_task(
        print_live(console, log, mux, options.call_sid or "", time.time())
    )
    try:
        result = await place_call(options, CallScript(lines=list(lines)))
        if not result.error and result.stream_url is None:  # nothing to follow: no stream
            result.error = _not_connected(result, options.to_number)
        if not result.error:
            try:
                await asyncio.wait_for(asyncio.shield(live), HEARD_WAIT_S)
            except TimeoutError:
                console.print("[yellow]the call log did not reach call.ended in time[/]")
        return result
    finally:
        live.cancel()
        await asyncio.gather(live, return_exceptions=True)
        await mux.close()
        await log.redis.aclose()


def _not_connected(result: CallResult, to: str) -> str:
    """Why the gateway's answer started no call, in words."""
    said = ""
    try:
        said = " ".join(parse_twiml(result.twiml).says)
    except TwimlError:
        said = result.twiml[:200]
    return (
        f"the gateway did not connect the call (HTTP {result.webhook_status}, it said"
        f" {said!r}): is {to} the number of a business? `make up` applies"
        f" {', '.join(DEMO_NUMBERS)} (deploy/tenants/*.yaml); add one with"
        " `uv run frontdesk tenant apply FILE.yaml`"
    )


def _stop(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def http_base(ws_base: str) -> str:
    """wss://host -> https://host, ws://host -> http://host."""
    return ws_base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def _answers(base_url: str) -> bool:
    """The server at `base_url` answers /healthz (a quick check before the call)."""
    try:
        return httpx.get(base_url.rstrip("/") + "/healthz", timeout=HEALTH_TIMEOUT_S).is_success
    except httpx.HTTPError:
        return False


def call(
    to: str = typer.Option(..., "--to", help="The business's number (E.164)."),
    say: list[str] = typer.Option(..., "--say", help="A caller line (repeat per turn)."),  # noqa: B008
    wav: Path | None = typer.Option(None, "--wav", help="Save the call: caller L, agent R."),  # noqa: B008
    from_number: str = typer.Option("+447700900123", "--from", help="The caller's number."),
    gateway: str = typer.Option("", help="Gateway base URL (default: this machine's gateway)."),
    speech_url: str = typer.Option(
        "", help="Aura TTS for the caller's voice (default: SPEECH_TTS_URL, else the local"
        " speech service on SPEECH_PORT)."
    ),
    max_call_s: float = typer.Option(180.0, help="Hang up after this long."),
) -> None:
    """Place a call with a caller who speaks; print what the platform heard; save a WAV.
    Against `make up` (= `frontdesk up --speech local`) running from this directory, no
    setting is needed: its Redis, gateway and speech service are read from `.frontdesk/up.json`."""
    if not E164.match(to):
        _stop(f"--to {to!r} is not an E.164 number: write it like +441632960001 (with the +)")
    settings = get_settings()
    state = read_state()
    redis_url = settings.redis_url or (state.redis_url if state else "")
    if not redis_url:
        _stop(
            "no running platform found: start it with `make up` in this directory (or `uv run"
            " frontdesk up --speech local`), or export the REDIS_URL of the one you run"
        )
    if state is not None and state.speech != "local" and not speech_url:
        _stop(
            "the running platform hears with the speech simulator (`frontdesk up --speech sim`),"
            " which cannot hear a speaking caller: stop it (`make down`) and start it with"
            " `make up` or `uv run frontdesk up --speech local`"
        )
    speech_port = state.speech_port if state else settings.speech_port
    tts_url = speech_url or settings.speech_tts_url or f"ws://127.0.0.1:{speech_port}"
    gateway_port = state.gateway_port if state else settings.gateway_port
    gateway_url = gateway or f"http://127.0.0.1:{gateway_port}"
    if not _answers(gateway_url):
        _stop(f"no FrontDesk gateway answers at {gateway_url}: start the platform with `make up`")
    if not _answers(http_base(tts_url)):
        _stop(
            f"no speech service answers at {tts_url} (it gives the caller a voice): start the"
            " platform with `make up` or `uv run frontdesk up --speech local`, or pass"
            " --speech-url"
        )
    options = TwilioCallerOptions(
        gateway_url=gateway_url,
        auth_token=settings.twilio_auth_token,
        to_number=to,
        from_number=from_number,
        call_sid=new_sid("CA"),
        tts_url=tts_url,
        tts_api_key=settings.speech_api_key or settings.deepgram_api_key,
        max_call_s=max_call_s,
        answer_timeout_s=30.0,
    )
    result = asyncio.run(_run_call(options, say, redis_url))
    for line, ms in voice_to_voice_ms(result):
        shown = "no answer" if ms is None else f"{ms:.0f} ms"
        console.print(f"voice-to-voice after {line!r}: {shown}")
    if wav is not None and result.caller_track:
        seconds = write_stereo_wav(wav, result)
        console.print(f"saved {seconds:.1f} s of audio to {wav} (caller left, agent right)")
    if result.error:
        console.print(f"[red]call failed: {result.error}[/]")
        raise typer.Exit(1)
