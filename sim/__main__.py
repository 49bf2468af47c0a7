"""`python -m sim`: run the provider simulators (Deepgram STT, Deepgram TTS, OpenAI) together.

Latency flags shape how slow the simulated providers are (the benchmark's profiles set them);
left unset, each simulator keeps its own defaults.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn

from sim.deepgram_stt_server import DeepgramSttSimOptions
from sim.deepgram_stt_server import create_app as stt_app
from sim.deepgram_tts_server import DeepgramTtsSimOptions
from sim.deepgram_tts_server import create_app as tts_app
from sim.llm_policy import DEFAULT_POLICY, load_policy
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
    await asyncio.gather(*(s.serve() for s in servers))


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
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
