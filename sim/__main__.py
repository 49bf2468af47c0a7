"""`python -m sim`: run the provider simulators (Deepgram STT, Deepgram TTS, OpenAI) together."""

from __future__ import annotations

import argparse
import asyncio

import uvicorn

from sim.deepgram_stt_server import DeepgramSttSimOptions
from sim.deepgram_stt_server import create_app as stt_app
from sim.deepgram_tts_server import DeepgramTtsSimOptions
from sim.deepgram_tts_server import create_app as tts_app
from sim.llm_policy import DEFAULT_POLICY, load_policy
from sim.openai_server import OpenAISimOptions
from sim.openai_server import create_app as llm_app


async def serve(args: argparse.Namespace) -> None:
    policy = load_policy(args.policy) if args.policy else DEFAULT_POLICY
    apps = [
        (stt_app(DeepgramSttSimOptions()), args.stt_port),
        (tts_app(DeepgramTtsSimOptions()), args.tts_port),
        (llm_app(OpenAISimOptions(policy=policy)), args.llm_port),
    ]
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        for app, port in apps
    ]
    await asyncio.gather(*(s.serve() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description="FrontDesk provider simulators")
    parser.add_argument("--stt-port", type=int, default=8031)
    parser.add_argument("--tts-port", type=int, default=8032)
    parser.add_argument("--llm-port", type=int, default=8033)
    parser.add_argument("--policy", help="YAML/JSON LLM policy file")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
