"""The Voice Agent simulator's view of a client's `Settings` message (pure, no I/O).

Checked the way the asyncapi spec / deepgram-sdk 7.17 types describe it: `type`, `audio`,
`agent` required; integers must be JSON integers; `agent` may be a stored-agent UUID string
(the simulator knows none). Anything wrong raises `SettingsError` whose code/description go
into the `Error` message the server sends before closing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INPUT_ENCODINGS = frozenset(
    {
        "linear16",
        "linear32",
        "flac",
        "alaw",
        "mulaw",
        "amr-nb",
        "amr-wb",
        "opus",
        "ogg-opus",
        "speex",
        "g729",
    }
)
OUTPUT_ENCODINGS = frozenset({"linear16", "mulaw", "alaw", "mp3", "opus", "flac", "aac"})
CLOCKED_INPUT = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
SYNTH_OUTPUT = frozenset({"linear16", "mulaw", "alaw"})


class SettingsError(ValueError):
    """The Settings message is not acceptable: `code` and `description` for the Error."""

    def __init__(self, description: str, code: str = "INVALID_SETTINGS") -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class AgentSettings:
    """What the simulator uses of an accepted Settings message."""

    tags: list[str]
    input_encoding: str
    input_rate: int
    output_encoding: str
    output_rate: int
    greeting: str
    prompt: str
    functions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def input_bytes_per_sample(self) -> int:
        return CLOCKED_INPUT[self.input_encoding]

    def function_names(self) -> set[str]:
        return {str(f["name"]) for f in self.functions}

    def openai_tools(self) -> list[dict[str, Any]]:
        """Client-side functions as OpenAI `tools` (what `sim.llm_policy.decide` takes)."""
        return [{"type": "function", "function": {"name": f["name"]}} for f in self.functions]


def _obj(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise SettingsError(f"{where}.{key} must be an object")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{where} must be an integer, got {value!r}")
    if value <= 0:
        raise SettingsError(f"{where} must be positive")
    return value


def _functions(think: dict[str, Any]) -> list[dict[str, Any]]:
    raw = think.get("functions") or []
    if not isinstance(raw, list):
        raise SettingsError("agent.think.functions must be an array")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"agent.think.functions[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SettingsError(f"{where}.name is required")
        params = item.get("parameters", {})
        if not isinstance(params, dict):
            raise SettingsError(f"{where}.parameters must be a JSON schema object")
        if item.get("endpoint") is None:  # server-side functions are not simulated
            out.append(item)
    return out


def parse_settings(data: Any) -> AgentSettings:
    """Validate a client's first message as `Settings`."""
    if not isinstance(data, dict) or data.get("type") != "Settings":
        raise SettingsError("the first message must be Settings", "SETTINGS_REQUIRED")
    audio = _obj(data, "audio", "Settings")
    audio_in = audio.get("input") or {"encoding": "linear16", "sample_rate": 24000}
    if not isinstance(audio_in, dict):
        raise SettingsError("audio.input must be an object")
    encoding = audio_in.get("encoding")
    if encoding not in INPUT_ENCODINGS:
        raise SettingsError(f"audio.input.encoding {encoding!r} is not supported")
    if encoding not in CLOCKED_INPUT:
        raise SettingsError(f"simulator cannot clock compressed input {encoding!r}")
    rate = _int(audio_in.get("sample_rate"), "audio.input.sample_rate")
    audio_out = audio.get("output") or {}
    if not isinstance(audio_out, dict):
        raise SettingsError("audio.output must be an object")
    out_encoding = audio_out.get("encoding", "linear16")
    if out_encoding not in OUTPUT_ENCODINGS:
        raise SettingsError(f"audio.output.encoding {out_encoding!r} is not supported")
    if out_encoding not in SYNTH_OUTPUT:
        raise SettingsError(f"simulator cannot synthesize {out_encoding!r}")
    if audio_out.get("container", "none") != "none":
        raise SettingsError("simulator only produces container 'none'")
    out_rate = _int(audio_out.get("sample_rate", 24000), "audio.output.sample_rate")
    agent = data.get("agent")
    if isinstance(agent, str):
        raise SettingsError(f"agent configuration {agent!r} not found", "AGENT_NOT_FOUND")
    if not isinstance(agent, dict):
        raise SettingsError("Settings.agent must be an object or an agent id")
    think = agent.get("think") or {}
    if isinstance(think, list):  # fallback list: the first provider answers
        think = think[0] if think else {}
    if not isinstance(think, dict) or not isinstance(think.get("provider"), dict):
        raise SettingsError("agent.think.provider is required")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SettingsError("tags must be an array of strings")
    greeting = agent.get("greeting") or ""
    return AgentSettings(
        tags=list(tags),
        input_encoding=str(encoding),
        input_rate=rate,
        output_encoding=str(out_encoding),
        output_rate=out_rate,
        greeting=str(greeting),
        prompt=str(think.get("prompt") or ""),
        functions=_functions(think),
    )
