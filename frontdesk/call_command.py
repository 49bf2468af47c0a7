"""`frontdesk call`: place one call against a running platform (`frontdesk up`) with a caller
who speaks (synthesised by an Aura-compatible TTS, normally the speech service), print the
conversation as the platform heard it, and save both sides to a stereo WAV."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer
from rich.console import Console

from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.runtime.settings import get_settings
from sim.call_audio import voice_to_voice_ms, write_stereo_wav
from sim.conversation_view import print_live
from sim.twilio_call_model import CallResult
from sim.twilio_caller import CallScript, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid

console = Console()
HEARD_WAIT_S = 30.0


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
    """Place a call with a caller who speaks; print what the platform heard; save a WAV."""
    settings = get_settings()
    tts_url = speech_url or settings.speech_tts_url or f"ws://127.0.0.1:{settings.speech_port}"
    if not settings.redis_url:
        typer.echo("REDIS_URL is not set: export the one `frontdesk up` printed", err=True)
        raise typer.Exit(2)
    options = TwilioCallerOptions(
        gateway_url=gateway or f"http://127.0.0.1:{settings.gateway_port}",
        auth_token=settings.twilio_auth_token,
        to_number=to,
        from_number=from_number,
        call_sid=new_sid("CA"),
        tts_url=tts_url,
        tts_api_key=settings.speech_api_key or settings.deepgram_api_key,
        max_call_s=max_call_s,
        answer_timeout_s=30.0,
    )
    result = asyncio.run(_run_call(options, say, settings.redis_url))
    for line, ms in voice_to_voice_ms(result):
        shown = "no answer" if ms is None else f"{ms:.0f} ms"
        console.print(f"voice-to-voice after {line!r}: {shown}")
    if wav is not None and result.caller_track:
        seconds = write_stereo_wav(wav, result)
        console.print(f"saved {seconds:.1f} s of audio to {wav} (caller left, agent right)")
    if result.error:
        console.print(f"[red]call failed: {result.error}[/]")
        raise typer.Exit(1)
