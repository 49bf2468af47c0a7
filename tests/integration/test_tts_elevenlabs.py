"""ElevenLabs TTS adapter against the ElevenLabs simulator over real sockets (ws and wss)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError

from services.media.agent_speech.tts_elevenlabs import ElevenLabsTts, TtsProviderError
from services.media.agent_speech.tts_protocol import TtsCleared, TtsEvent, TtsFlushed, TtsStream
from shared.runtime.settings import Settings
from sim import elevenlabs_tts_server as el_srv
from sim.deepgram_tts_audio import synthesize
from sim.tls import TlsFiles, make_tls_files
from tests.servers import serve_app

KEY = "el-sim"
GUARD_S = 20  # hang guard only; never asserted on
MS_PER_CHAR = 60.0
TEXTS = (
    "Thanks for calling Dave's Barbershop.",
    "We are open until six.",
    "A haircut is twenty pounds, and a beard trim is ten.",
)


def el_audio(text: str) -> bytes:
    """What the simulator sends for one segment (ulaw_8000, text stripped)."""
    return synthesize(text.strip(), MS_PER_CHAR, 8000, "mulaw")


# ------------------------------------------------------------------ helpers


def refused_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def el_settings(port: int, *, scheme: str = "ws", **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "elevenlabs_tts_url": f"{scheme}://127.0.0.1:{port}",
        "elevenlabs_api_key": KEY,
        "elevenlabs_model": "eleven_flash_v2_5",
        "tts_connect_timeout_s": 5.0,
    }
    values.update(kw)
    return Settings(**values)


class EventLog:
    """Consumes a TtsStream's events() in the background; tests wait on conditions."""

    def __init__(self, tts: TtsStream) -> None:
        self.items: list[TtsEvent] = []
        self.error: BaseException | None = None
        self.ended = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(tts))

    async def _run(self, tts: TtsStream) -> None:
        try:
            async for item in tts.events():
                self.items.append(item)
                self._changed.set()
        except (TtsProviderError, OSError) as exc:
            self.error = exc
        self.ended = True
        self._changed.set()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(GUARD_S):
            while not condition():
                self._changed.clear()
                if condition():
                    return
                await self._changed.wait()

    def count(self, kind: type) -> int:
        return sum(isinstance(i, kind) for i in self.items)

    def audio_bytes(self) -> int:
        return sum(len(i) for i in self.items if isinstance(i, bytes))

    def segments(self, after: int = 0) -> list[bytes]:
        """Audio of each flushed segment (items from index `after` on)."""
        out, current = [], b""
        for item in self.items[after:]:
            if isinstance(item, bytes):
                current += item
            elif isinstance(item, TtsFlushed):
                out.append(current)
                current = b""
        return out

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def sim_sessions(port: int, scheme: str = "http", verify: Any = True) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=verify) as http:
        response = await http.get(f"{scheme}://127.0.0.1:{port}/sim/tts/sessions")
        response.raise_for_status()
        sessions: dict[str, Any] = response.json()
        return sessions


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def fast_port() -> AsyncIterator[int]:
    opts = el_srv.ElevenLabsTtsSimOptions(first_byte_latency_ms=5, realtime_factor=50.0)
    async with serve_app(el_srv.create_app(opts)) as port:
        yield port


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def slow_port() -> AsyncIterator[int]:
    opts = el_srv.ElevenLabsTtsSimOptions(first_byte_latency_ms=0, realtime_factor=4.0)
    async with serve_app(el_srv.create_app(opts)) as port:
        yield port


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("el-tls"))


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def tls_port(tls_files: TlsFiles) -> AsyncIterator[int]:
    opts = el_srv.ElevenLabsTtsSimOptions(first_byte_latency_ms=5, realtime_factor=50.0)
    async with serve_app(el_srv.create_app(opts), tls_files) as port:
        yield port


@asynccontextmanager
async def opened(tts: TtsStream) -> AsyncIterator[EventLog]:
    await tts.open()
    log = EventLog(tts)
    try:
        yield log
    finally:
        await tts.close()
        await log.wait_for(lambda: log.ended)
        await log.stop()


# ------------------------------------------------------------------ tests


async def test_segments_in_order_with_exact_audio(fast_port: int) -> None:
    tts = ElevenLabsTts(el_settings(fast_port), "voice-dave")
    async with opened(tts) as log:
        for text in TEXTS:
            await tts.speak(text)
        await log.wait_for(lambda: log.count(TtsFlushed) == len(TEXTS))
        assert log.segments() == [el_audio(t) for t in TEXTS]
        assert log.count(TtsCleared) == 0
    sockets = (await sim_sessions(fast_port))["sockets"]
    mine = [s for s in sockets if s["voice_id"] == "voice-dave"]
    assert len(mine) == 1
    assert mine[0]["endpoint"] == "multi-stream-input"
    assert mine[0]["output_format"] == "ulaw_8000"
    assert mine[0]["model_id"] == "eleven_flash_v2_5"
    assert [c["generated_texts"] for c in mine[0]["contexts"]] == [[t] for t in TEXTS]
    assert all(c["closed_by"] == "close_context" for c in mine[0]["contexts"])


async def test_more_segments_than_contexts_wait_for_a_slot(fast_port: int) -> None:
    texts = [f"Sentence number {i} of the reply." for i in range(12)]
    tts = ElevenLabsTts(el_settings(fast_port), "voice-many")
    async with opened(tts) as log:
        for text in texts:
            await tts.speak(text)
        await log.wait_for(lambda: log.count(TtsFlushed) == len(texts))
        assert log.segments() == [el_audio(t) for t in texts]
    sockets = (await sim_sessions(fast_port))["sockets"]
    mine = next(s for s in sockets if s["voice_id"] == "voice-many")
    assert mine["errors"] == []  # never more than 5 live contexts
    assert len(mine["contexts"]) == len(texts)


async def test_snake_case_server_variant(tmp_path: Path) -> None:
    opts = el_srv.ElevenLabsTtsSimOptions(
        first_byte_latency_ms=0, realtime_factor=0.0, snake_case=True
    )
    async with serve_app(el_srv.create_app(opts)) as port:
        tts = ElevenLabsTts(el_settings(port), "voice-snake")
        async with opened(tts) as log:
            for text in TEXTS[:2]:
                await tts.speak(text)
            await log.wait_for(lambda: log.count(TtsFlushed) == 2)
            assert log.segments() == [el_audio(t) for t in TEXTS[:2]]


async def test_clear_mid_segment_drops_stale_audio(slow_port: int) -> None:
    long_a = "This is a rather long first sentence that the caller interrupts halfway."
    long_b = "And this second sentence was queued behind it."
    after = "Sure, go ahead."
    tts = ElevenLabsTts(el_settings(slow_port), "voice-bargein")
    async with opened(tts) as log:
        await tts.speak(long_a)
        await tts.speak(long_b)
        await log.wait_for(lambda: log.audio_bytes() > 0)
        await tts.clear()
        cut = len(log.items)
        await tts.speak(after)
        await log.wait_for(lambda: log.count(TtsFlushed) == 1)
        tail = log.items[cut:]
        assert isinstance(tail[0], TtsCleared)
        assert log.segments(after=cut) == [el_audio(after)]
        assert log.count(TtsFlushed) == 1 and log.count(TtsCleared) == 1
        assert log.audio_bytes() - len(el_audio(after)) < len(el_audio(long_a))

        # the server really kept sending the cleared contexts (dropped here by context id)
        async def stale_done() -> bool:
            sock = next(
                s
                for s in (await sim_sessions(slow_port))["sockets"]
                if s["voice_id"] == "voice-bargein"
            )
            return all(c["final_sent"] for c in sock["contexts"])

        async with asyncio.timeout(GUARD_S):
            while True:
                if await stale_done():
                    break
                await asyncio.sleep(0.05)
        await tts.speak(TEXTS[1])
        await log.wait_for(lambda: log.count(TtsFlushed) == 2)
        assert log.segments(after=cut) == [el_audio(after), el_audio(TEXTS[1])]
    sock = next(
        s for s in (await sim_sessions(slow_port))["sockets"] if s["voice_id"] == "voice-bargein"
    )
    assert sock["contexts"][0]["audio_bytes"] == len(el_audio(long_a))


async def test_wrong_api_key_fails_the_stream(fast_port: int) -> None:
    tts = ElevenLabsTts(el_settings(fast_port, elevenlabs_api_key="nope"), "voice-badkey")
    async with opened(tts) as log:
        await log.wait_for(lambda: log.ended)
        assert isinstance(log.error, TtsProviderError)
        assert "invalid_api_key" in str(log.error)


async def test_tls_with_trustme_ca(tls_port: int, tls_files: TlsFiles) -> None:
    settings = el_settings(tls_port, scheme="wss", provider_ca_file=str(tls_files.ca_pem))
    tts = ElevenLabsTts(settings, "voice-tls")
    async with opened(tts) as log:
        await tts.speak(TEXTS[0])
        await log.wait_for(lambda: log.count(TtsFlushed) == 1)
        assert log.segments() == [el_audio(TEXTS[0])]


async def test_tls_without_the_ca_is_refused(tls_port: int) -> None:
    tts = ElevenLabsTts(el_settings(tls_port, scheme="wss"), "voice-untrusted")
    with pytest.raises(ssl.SSLCertVerificationError):
        await tts.open()


async def test_sdk_convert_realtime_over_wss(
    tls_port: int, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own (sync, wss-only) socket helper: trusts the CA via SSL_CERT_FILE."""
    client = ElevenLabs(api_key=KEY, base_url=f"https://127.0.0.1:{tls_port}")

    def run() -> bytes:
        chunks = client.text_to_speech.convert_realtime(
            "voice-sdk",
            text=iter(["Hello there, ", "thanks for calling."]),
            model_id="eleven_flash_v2_5",
            output_format="ulaw_8000",
        )
        return b"".join(chunks)

    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(run)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_pem))
    audio = await asyncio.to_thread(run)
    trust = ssl.create_default_context(cafile=str(tls_files.ca_pem))
    sockets = (await sim_sessions(tls_port, "https", trust))["sockets"]
    sdk = [s for s in sockets if s["voice_id"] == "voice-sdk" and s["contexts"]]
    assert len(sdk) == 1 and sdk[0]["endpoint"] == "stream-input"
    assert sdk[0]["close_code"] == 1000
    generated = sdk[0]["contexts"][0]["generated_texts"]
    assert audio == b"".join(el_audio(t) for t in generated)
    assert " ".join(generated) == "Hello there, thanks for calling."


async def test_sdk_rest_stream_and_errors(fast_port: int) -> None:
    from elevenlabs.client import AsyncElevenLabs

    client = AsyncElevenLabs(api_key=KEY, base_url=f"http://127.0.0.1:{fast_port}")
    chunks = client.text_to_speech.stream(
        "voice-rest", text=TEXTS[2], model_id="eleven_flash_v2_5", output_format="ulaw_8000"
    )
    audio = b"".join([chunk async for chunk in chunks])
    assert audio == el_audio(TEXTS[2])
    bad_key = AsyncElevenLabs(api_key="nope", base_url=f"http://127.0.0.1:{fast_port}")
    with pytest.raises(ApiError) as denied:
        async for _ in bad_key.text_to_speech.stream("v", text="hi", output_format="ulaw_8000"):
            pass
    assert denied.value.status_code == 401
    with pytest.raises(ApiError) as mp3:
        async for _ in client.text_to_speech.stream("v", text="hi"):  # default mp3: not simulated
            pass
    assert mp3.value.status_code == 400
