"""Simulated caller speaking Twilio's voice webhook + bidirectional Media Streams protocol.

``await place_call(options, script)`` POSTs the signed inbound-call webhook, opens the
<Connect><Stream> WebSocket, streams caller audio in real time (one 20 ms frame per 20 ms
against a monotonic clock), models Twilio's playback buffer for the agent's audio/marks/
clears, speaks the script turn by turn (registering each utterance with the STT simulator
first) and hangs up. If the server closes the socket, it follows <Connect action=...>.
CLI: ``python -m sim.twilio_caller --gateway URL --auth-token T --to +44... --line "..."``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sim.twilio_call_model import (
    AgentSegment,
    CallEvent,
    CallResult,
    CallScript,
    Dtmf,
    Misheard,
    ScriptLine,
    Silence,
    SpeakOver,
    SpokenLine,
    TwilioCallerOptions,
)
from sim.twilio_call_runner import CallRun, OnEvent
from sim.twilio_call_turns import CallError
from sim.twilio_media import MediaStreamSession, open_media_stream
from sim.twilio_webhook import (
    ParsedTwiml,
    WebhookResult,
    inbound_call_params,
    parse_twiml,
    post_voice_webhook,
    sign_request,
)

__all__ = [
    "AgentSegment",
    "CallError",
    "CallEvent",
    "CallResult",
    "CallScript",
    "Dtmf",
    "MediaStreamSession",
    "Misheard",
    "OnEvent",
    "ParsedTwiml",
    "ScriptLine",
    "Silence",
    "SpeakOver",
    "SpokenLine",
    "TwilioCallerOptions",
    "WebhookResult",
    "inbound_call_params",
    "main",
    "open_media_stream",
    "parse_twiml",
    "place_call",
    "post_voice_webhook",
    "sign_request",
]


async def place_call(
    options: TwilioCallerOptions, script: CallScript, on_event: OnEvent | None = None
) -> CallResult:
    """Place one simulated inbound call. Problems end up in ``CallResult.error``."""
    return await CallRun(options, script, on_event).run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.twilio_caller", description=__doc__)
    p.add_argument("--gateway", default="http://127.0.0.1:8000", help="gateway base URL")
    p.add_argument("--auth-token", required=True, help="Twilio auth token for signing")
    p.add_argument("--to", required=True, help="dialled number (E.164)")
    p.add_argument("--from", dest="from_number", default="+447700900123", help="caller number")
    p.add_argument("--stt-control", default=None, help="STT simulator base URL")
    p.add_argument("--line", dest="turns", action="append", default=[], help="caller line")
    p.add_argument("--dtmf", dest="turns", action="append", type=Dtmf, help="DTMF turn")
    p.add_argument("--no-hangup", action="store_true", help="wait for the server to hang up")
    p.add_argument("--max-call-s", type=float, default=60.0)
    args = p.parse_args(argv)
    opts = TwilioCallerOptions(
        gateway_url=args.gateway,
        auth_token=args.auth_token,
        to_number=args.to,
        from_number=args.from_number,
        stt_control_url=args.stt_control,
        max_call_s=args.max_call_s,
    )
    lines: list[ScriptLine] = list(args.turns)
    script = CallScript(lines=lines, hangup_after_last=not args.no_hangup)
    result = asyncio.run(place_call(opts, script, on_event=lambda e: print(e.describe())))
    print(f"call {result.call_sid}: hangup_by={result.hangup_by} marks={result.marks_echoed}")
    print(f"agent audio {len(result.agent_audio) / 8000:.2f}s, clears={result.clears}")
    for w in result.warnings:
        print(f"warning: {w}")
    if result.error:
        print(f"ERROR: {result.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
