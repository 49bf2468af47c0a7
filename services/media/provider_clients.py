"""Provider SDK and HTTP clients shared by every call on a media replica.

Building one costs ~15 ms of CPU (a TLS context and an httpx client), which a call paid two or
three times at set-up; now each is built once per (key, URL), on first use, and closed with the
app. Held by `MediaDeps`, not a module global.
"""

from __future__ import annotations

import platform
import ssl
from importlib import metadata
from typing import Any

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment

from shared.contract import events as ev
from shared.runtime.settings import Settings

REST_TIMEOUT_S = 30.0


def http_base(ws_base: str) -> str:
    """wss://host -> https://host, ws://host -> http://host."""
    return ws_base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


class ProviderClients:
    """Lazily built, cached clients for Deepgram (WebSocket and REST) and plain HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ssl: ssl.SSLContext | None = None
        self._http: httpx.AsyncClient | None = None
        self._deepgram: dict[tuple[str, str, str], AsyncDeepgramClient] = {}
        self._deepgram_headers: dict[str, dict[str, str]] = {}

    def ssl_context(self) -> ssl.SSLContext:
        """System trust store plus `provider_ca_file` (a simulator's throwaway CA) when set."""
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if self.settings.provider_ca_file:
                ctx.load_verify_locations(cafile=self.settings.provider_ca_file)
            self._ssl = ctx
        return self._ssl

    def http(self) -> httpx.AsyncClient:
        """One pooled HTTP client for REST calls to providers."""
        if self._http is None:
            self._http = httpx.AsyncClient(verify=self.ssl_context(), timeout=REST_TIMEOUT_S)
        return self._http

    def deepgram(self, api_key: str, ws_base: str, rest_base: str = "") -> AsyncDeepgramClient:
        """A Deepgram client whose WebSocket base is `ws_base` (REST: `rest_base` or derived)."""
        key = (api_key, ws_base, rest_base)
        client = self._deepgram.get(key)
        if client is None:
            base = rest_base or http_base(ws_base)
            env = DeepgramClientEnvironment(
                base=base, production=ws_base, agent=ws_base, agent_rest=base
            )
            kwargs: dict[str, Any] = {"httpx_client": self.http()} if rest_base else {}
            client = AsyncDeepgramClient(api_key=api_key, environment=env, **kwargs)
            self._deepgram[key] = client
        return client

    def deepgram_headers(self, api_key: str) -> dict[str, str]:
        """The headers deepgram-sdk sends on its sockets (its version read once, not per call)."""
        headers = self._deepgram_headers.get(api_key)
        if headers is None:
            try:
                version = metadata.version("deepgram-sdk")
            except metadata.PackageNotFoundError:
                version = "unknown"
            headers = {
                "User-Agent": f"deepgram-sdk/{version}",
                "X-Fern-Language": "Python",
                "X-Fern-Runtime": f"python/{platform.python_version()}",
                "X-Fern-Platform": f"{platform.system().lower()}/{platform.release()}",
                "X-Fern-SDK-Name": "deepgram-sdk",
                "X-Fern-SDK-Version": version,
                "Authorization": f"Token {api_key}",
            }
            self._deepgram_headers[api_key] = headers
        return dict(headers)

    async def aclose(self) -> None:
        """Close pooled connections (at replica shutdown)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None


# --- the self-hosted speech service, per tenant (issue 15, speech15) ---------------------------
LOCAL_SPEECH = "local"
"""Provider name of the self-hosted speech service: its STT and TTS usage is metered under it
and priced at compute (shared/tenancy/pricing.py)."""


def local_speech_settings(settings: Settings) -> Settings:
    """`settings` with Deepgram's STT and TTS URLs pointed at the speech service (`SPEECH_URL`,
    else this host's `SPEECH_PORT`), its key (`SPEECH_API_KEY`, else `DEEPGRAM_API_KEY`, the
    same rule as the service's), and its usage metered as 'local'. Media's Deepgram clients
    then talk to it unchanged: it speaks the same protocols."""
    url = settings.speech_url or f"ws://127.0.0.1:{settings.speech_port}"
    return settings.model_copy(
        update={
            "deepgram_stt_url": url,
            "deepgram_tts_url": url,
            "deepgram_tts_rest_url": "",  # derived from the URL above
            "deepgram_api_key": settings.speech_api_key or settings.deepgram_api_key,
            "stt_provider": LOCAL_SPEECH,
            "tts_provider": LOCAL_SPEECH,
        }
    )


def speech_for_call(started: ev.CallStarted, settings: Settings) -> tuple[ev.CallStarted, Settings]:
    """The call as media serves it, and its settings. A cascade call of a tenant with
    `speech: local` is heard and spoken by the speech service: STT through
    `local_speech_settings`, and the voice becomes `local:<name>` (the TTS factory's 'local'
    provider; its greetings are cached apart from the vendor voice's). Other calls, and the
    provider voice agents (which hear and speak themselves), are unchanged."""
    if started.speech != LOCAL_SPEECH or started.pipeline != "cascade":
        return started, settings
    provider, sep, name = started.voice.partition(":")
    if not sep:  # a bare Aura model name
        name = started.voice
    elif provider not in ("deepgram", LOCAL_SPEECH):  # another vendor's voice id: the default
        name = ""
    local_voice = f"{LOCAL_SPEECH}:{name}"
    return started.model_copy(update={"voice": local_voice}), local_speech_settings(settings)
