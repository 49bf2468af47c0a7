"""`make demo`: one call to Dave's Barbershop through the whole platform.

By default on the real speech path: the caller's lines are synthesised by Piper and recognised
by Whisper in the self-hosted speech service (services/speech), the agent's replies are spoken
by Piper too; the LLM is the scripted simulator. `--speech sim` runs the old fast path (text
handed to the STT simulator, tones for the agent's voice)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from itertools import zip_longest
from pathlib import Path

from rich.console import Console
from rich.table import Table

from frontdesk.supervisor import (
    Ports,
    Stack,
    service_env,
    speech_env,
    start_services,
    start_sims,
    start_speech,
)
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.embedded import child_env, ensure
from shared.runtime.settings import get_settings
from shared.tenancy.call_records import CallRecord, load_call_record
from shared.tenancy.tenant_apply import apply, load_spec
from sim.bench.speech_load import word_errors
from sim.call_audio import voice_to_voice_ms, write_stereo_wav
from sim.conversation_view import print_live
from sim.twilio_caller import CallResult, CallScript, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid

ROOT = Path(__file__).resolve().parent.parent
TENANT = ROOT / "deploy" / "tenants" / "daves-barbershop.yaml"
POLICY = ROOT / "sim" / "policies" / "daves_barbershop.yaml"
WAV = ROOT / ".frontdesk" / "demo-call.wav"
LINES = [
    "Hi, how much is a haircut?",
    "And where are you located?",
    "Great, thanks, bye.",
]

console = Console()


async def _wait_recorded(database_url: str, call_sid: str, timeout_s: float) -> CallRecord:
    engine = make_engine(database_url)
    sessions = make_sessions(engine)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            async with sessions() as session:
                record = await load_call_record(session, call_sid)
            if record is not None and record.status == "completed":
                return record
            if time.monotonic() > deadline:
                raise TimeoutError("the recorder did not store the call in time")
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


def _print_record(record: CallRecord) -> None:
    console.rule("Call record read back from Postgres")
    console.print(
        f"call {record.call_sid}  {record.from_number} -> {record.to_number}  "
        f"status={record.status} reason={record.end_reason} "
        f"duration={record.duration_s:.1f}s"
    )
    table = Table("turn", "who", "text")
    for line in record.lines:
        table.add_row(str(line.turn_id), line.role, line.text)
    console.print(table)
    for tool in record.tools:
        console.print(f"tool call: {tool.name}({tool.arguments}) ok={tool.ok} -> {tool.result}")
    latency = Table(
        "turn",
        *(
            "speech_end -> " + s
            for s in ("stt_final", "llm_first_token", "tts_first_byte", "first_audio_sent")
        ),
    )
    for turn in record.turns:
        latency.add_row(
            str(turn.turn_id),
            *(
                f"{turn.stages_ms.get(s, float('nan')):.0f} ms"
                for s in ("stt_final", "llm_first_token", "tts_first_byte", "first_audio_sent")
            ),
        )
    console.print(latency)


def _print_speech_quality(record: CallRecord, result: CallResult) -> None:
    """WER of the caller's lines (what Whisper heard, as stored) and voice-to-voice latency."""
    console.rule("Real speech: what the recogniser heard, and how fast the agent answered")
    heard = [line.text for line in record.lines if line.role == "caller"]
    table = Table("caller said", "recogniser heard (Postgres, as it cut the turns)")
    for said, got in zip_longest(LINES, heard, fillvalue=""):
        table.add_row(said, got)
    console.print(table)
    errors, words = word_errors(" ".join(LINES), " ".join(heard))
    wer = errors / words if words else 1.0
    verdict = "[green]within[/]" if wer <= 0.10 else "[red]ABOVE[/]"
    console.print(
        f"WER of the caller's lines: [bold]{wer:.1%}[/] ({errors} of {words} words; {verdict} "
        "the 10 % target)"
    )
    for said, ms in voice_to_voice_ms(result):
        shown = "no answer" if ms is None else f"{ms:.0f} ms"
        console.print(f"voice-to-voice at the caller after {said!r}: [bold]{shown}[/]")
    seconds = write_stereo_wav(WAV, result)
    console.print(f"both sides saved: {WAV} ({seconds:.1f} s; caller left, agent right)")


async def run_demo(speech: str = "local") -> int:
    _exit_on_sigterm()
    settings = get_settings()
    embedded = ensure(settings.redis_url, settings.database_url, settings.embedded_dir)
    stack = Stack(ports=Ports.random(), log_dir=ROOT / ".frontdesk" / "logs")
    try:
        console.print(f"redis: {embedded.redis_url}\npostgres: {embedded.database_url}")
        upgrade(embedded.database_url)
        engine = make_engine(embedded.database_url)
        async with make_sessions(engine)() as session:
            spec = load_spec(TENANT)
            await apply(session, spec)
        await engine.dispose()
        env = child_env(embedded, service_env(stack.ports, with_sims=True))
        real = speech == "local"
        if real:
            console.print(
                "[bold]Real speech path[/]: the caller's voice and the agent's voice are Piper "
                "(en_US-joe-medium), the platform hears the caller with Whisper tiny.en, both in "
                "services/speech. [bold]The LLM is scripted[/] (sim/policies/daves_barbershop"
                ".yaml): replies come from rules, not a model. Offline, no keys."
            )
            env |= speech_env(stack.ports)
        else:
            console.print("[bold]Simulated speech[/]: caller text is handed to the STT "
                          "simulator, voices are tones; the LLM is scripted.")
        start_sims(stack, env, policy=str(POLICY))
        if real:
            console.print("loading the speech models (Whisper, Silero VAD, Piper)...")
            start_speech(stack, env)
        start_services(stack, env, timeout_s=180)  # the speech models load alongside
        console.print(f"gateway: http://127.0.0.1:{stack.ports.gateway}  (logs in {stack.log_dir})")
        redis_url = embedded.redis_url
        log = CallLog(connect(redis_url), settings.stream_slot_groups)
        mux = StreamMux.from_url(redis_url)
        call_sid = new_sid("CA")
        t0 = time.time()
        live = asyncio.create_task(print_live(console, log, mux, call_sid, t0))
        options = TwilioCallerOptions(
            gateway_url=f"http://127.0.0.1:{stack.ports.gateway}",
            auth_token=env.get("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            to_number=spec.numbers[0].e164,
            from_number="+447700900123",
            call_sid=call_sid,
            stt_control_url=None if real else f"http://127.0.0.1:{stack.ports.stt}",
            tts_url=f"ws://127.0.0.1:{stack.ports.speech}" if real else None,
            tts_api_key=env.get("SPEECH_API_KEY") or env.get("DEEPGRAM_API_KEY"),
            answer_timeout_s=30.0,
            max_call_s=180.0,
        )
        result = await place_call(options, CallScript(lines=list(LINES)))
        if result.error:
            console.print(f"[red]call failed: {result.error}[/]")
            return 1
        await asyncio.wait_for(live, 30)
        await mux.close()
        await log.redis.aclose()
        record = await _wait_recorded(embedded.database_url, call_sid, 30)
        _print_record(record)
        if real:
            WAV.parent.mkdir(parents=True, exist_ok=True)
            _print_speech_quality(record, result)
        return 0
    finally:
        stack.stop()
        embedded.stop()


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` stops every process the demo started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main() -> None:
    raise SystemExit(asyncio.run(run_demo()))


if __name__ == "__main__":
    main()
