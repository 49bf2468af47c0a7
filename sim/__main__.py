"""`python -m sim`: run the provider simulators (Deepgram STT, Deepgram TTS, OpenAI,
ElevenLabs ConvAI) together.

Latency flags shape how slow the simulated providers are (the benchmark's profiles set them);
left unset, each simulator keeps its own defaults.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from sim.deepgram_stt_server import DeepgramSttSimOptions
from sim.deepgram_stt_server import create_app as stt_app
from sim.deepgram_tts_server import DeepgramTtsSimOptions
from sim.deepgram_tts_server import create_app as tts_app
from sim.elevenlabs_agent_server import ConvaiSimOptions
from sim.elevenlabs_agent_server import create_app as convai_app
from sim.llm_policy import DEFAULT_POLICY, Policy, load_policy
from sim.openai_server import OpenAISimOptions
from sim.openai_server import create_app as llm_app


def _given(**values: Any) -> dict[str, Any]:
    """Only the options the command line set (None = keep the simulator's default)."""
    return {k: v for k, v in values.items() if v is not None}


async def serve(args: argparse.Namespace) -> None:
    policy = load_policy(args.policy) if args.policy else DEFAULT_POLICY
    stt = DeepgramSttSimOptions(**_given(processing_latency_ms=args.stt_latency_ms))
    tts = DeepgramTtsSimOptions(
        **_given(
            first_byte_latency_ms=args.tts_first_byte_ms,
            realtime_factor=args.tts_realtime_factor,
        )
    )
    llm = OpenAISimOptions(
        policy=policy,
        **_given(
            first_token_latency_ms=args.llm_first_token_ms,
            inter_chunk_latency_ms=args.llm_inter_chunk_ms,
        ),
    )
    apps = [
        (stt_app(stt), args.stt_port),
        (tts_app(tts), args.tts_port),
        (llm_app(llm), args.llm_port),
    ]
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        for app, port in apps
    ]
    if args.el_agent_port:
        servers += _convai_servers(args)
    if args.dg_agent_port:
        servers.append(_dg_agent_server(args.dg_agent_port, policy))
    if args.twilio_port:
        agents = [
            f"http://127.0.0.1:{port}"
            for port in (args.el_agent_control_port, args.dg_agent_port)
            if port
        ]
        servers.append(_twilio_rest_server(args.twilio_port, args.stt_port, agents))
    await asyncio.gather(*(s.serve() for s in servers))


def _twilio_rest_server(port: int, stt_port: int, agents: list[str]) -> uvicorn.Server:
    """Twilio REST (outbound calls): it dials the restaurant host, whose words go to the STT
    simulator and the voice-agent simulators (whichever pipeline the caller's number uses);
    account and auth token are the platform's (TWILIO_ACCOUNT_SID/AUTH_TOKEN)."""
    from shared.runtime.settings import Settings
    from sim.twilio_rest_server import TwilioRestSimOptions
    from sim.twilio_rest_server import create_app as twilio_app

    settings = Settings()
    options = TwilioRestSimOptions(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        stt_control_url=f"http://127.0.0.1:{stt_port}",
        agent_control_urls=agents,
    )
    app = twilio_app(options)
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))


def _convai_servers(args: argparse.Namespace) -> list[uvicorn.Server]:
    """ElevenLabs ConvAI: https/wss (with --tls-dir) plus the same app on a plain control port
    (the caller simulator's httpx does not trust the throwaway CA)."""
    tls: dict[str, Any] = {}
    if args.tls_dir is not None:
        from sim.tls import make_tls_files

        files = make_tls_files(args.tls_dir)
        tls = {"ssl_certfile": str(files.cert_chain_pem), "ssl_keyfile": str(files.key_pem)}
    scheme = "https" if tls else "http"
    app = convai_app(ConvaiSimOptions(public_base_url=f"{scheme}://127.0.0.1:{args.el_agent_port}"))
    ports = [(args.el_agent_port, tls)]
    if args.el_agent_control_port:
        ports.append((args.el_agent_control_port, {}))
    return [
        uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **extra)
        )
        for port, extra in ports
    ]


def _dg_agent_server(port: int, policy: Policy) -> uvicorn.Server:
    """Deepgram Voice Agent (plain ws: the SDK accepts ws://); thinks with the LLM policy."""
    from sim.deepgram_agent_server import create_app as dg_agent_app

    app = dg_agent_app(policy=policy)
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))


def _non_negative(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="FrontDesk provider simulators")
    parser.add_argument("--stt-port", type=int, default=8031)
    parser.add_argument("--tts-port", type=int, default=8032)
    parser.add_argument("--llm-port", type=int, default=8033)
    parser.add_argument("--policy", help="YAML/JSON LLM policy file")
    parser.add_argument("--el-agent-port", type=int, help="ElevenLabs ConvAI simulator port")
    parser.add_argument("--dg-agent-port", type=int, help="Deepgram Voice Agent simulator port")
    parser.add_argument("--twilio-port", type=int, help="Twilio REST simulator port")
    parser.add_argument(
        "--el-agent-control-port", type=int, help="Plain-http port of the same ConvAI simulator"
    )
    parser.add_argument("--tls-dir", type=Path, help="Serve ConvAI over TLS (trustme CA here)")
    parser.add_argument(
        "--stt-latency-ms", type=_non_negative(int), help="STT delay before each message"
    )
    parser.add_argument(
        "--tts-first-byte-ms", type=_non_negative(int), help="TTS delay from Flush to audio"
    )
    parser.add_argument(
        "--tts-realtime-factor",
        type=_non_negative(float),
        help="TTS audio is made this many times faster than real time (0 = instant)",
    )
    parser.add_argument(
        "--llm-first-token-ms", type=_non_negative(float), help="LLM delay before 1st chunk"
    )
    parser.add_argument(
        "--llm-inter-chunk-ms", type=_non_negative(float), help="LLM delay between chunks"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    # uvloop: the simulators share a 2-core box with the platform they stand in for, so the
    # cheaper event loop (timers, socket reads/writes, uvicorn's per-message pause/resume of
    # reading) leaves more CPU to what is measured. Nothing on the wire changes.
    uvloop.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
