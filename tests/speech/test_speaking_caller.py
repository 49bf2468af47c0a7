"""The speaking caller: its lines are real synthesised speech from the Aura-compatible speech
TTS, sent as its Twilio audio; it tells the STT simulator nothing (so the simulator, which
only hears scripted text, hears nothing); both sides land in a stereo WAV."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from shared.codecs import ulaw_to_pcm16
from shared.runtime.settings import Settings
from sim.aura_client import synthesize
from sim.call_audio import voice_to_voice_ms, write_stereo_wav
from sim.twilio_caller import CallScript, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import wait_for_record
from tests.servers import serve_app
from tests.speech.test_tts_socket import speech_app

LINE = "Hi, how much is a haircut?"
pytestmark = pytest.mark.e2e


@pytest.fixture
async def caller_voice_url() -> AsyncIterator[str]:
    async with serve_app(speech_app(Settings())) as port:
        yield f"ws://127.0.0.1:{port}"


def _rms(ulaw: bytes) -> float:
    pcm = ulaw_to_pcm16(ulaw).astype(np.float64)
    return float(np.sqrt((pcm**2).mean())) if len(pcm) else 0.0


async def test_caller_speaks_real_audio_and_scripts_no_stt(
    platform: Platform, caller_voice_url: str, tmp_path: Path
) -> None:
    options = TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=platform.tenant_number,
        call_sid=new_sid("CA"),
        stt_control_url=platform.stt_control,  # ignored for spoken lines: tts_url wins
        tts_url=caller_voice_url,
        tts_api_key="dg-sim",
        answer_timeout_s=30,
    )
    result = await place_call(options, CallScript(lines=[LINE]))
    assert result.error is None, result.error

    # The caller's frames in its line's window are exactly the synthesised speech.
    voice = await synthesize(caller_voice_url, LINE, "dg-sim")
    (line,) = result.lines
    start = line.start_ms // 20 * 160
    sent = result.caller_track[start : start + len(voice)]
    assert sent == voice and _rms(voice) > 500
    assert 1.0 < len(voice) / 8000 < 5.0

    # The STT simulator was told nothing, so the platform heard no caller line; the agent
    # greeted and then reprompted the silence (SILENCE_REPROMPT_S=6 in the test platform).
    record = await wait_for_record(platform.infra.database_url, result.call_sid)
    assert [x.text for x in record.lines if x.role == "caller"] == []
    assert len([x for x in record.lines if x.role == "agent"]) >= 2

    # Both sides in one stereo WAV on one timeline: caller left, agent right.
    path = tmp_path / "call.wav"
    seconds = write_stereo_wav(path, result)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert abs(seconds - len(result.caller_track) / 8000) < 0.5
    caller_loud = np.abs(pcm[:, 0]) > 1000
    agent_loud = np.abs(pcm[:, 1]) > 1000
    assert caller_loud.any() and agent_loud.any()
    # The agent's greeting plays before the caller's line starts.
    assert np.argmax(agent_loud) < start
    # voice-to-voice: the reprompt is the agent's next audio after the line (≈ 6 s).
    ((said, ms),) = voice_to_voice_ms(result)
    assert said == LINE and ms is not None and ms > 3000
