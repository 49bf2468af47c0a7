"""What a simulated ElevenLabs ConvAI agent is (its dashboard configuration) and what a
conversation may override: pure helpers of `sim/elevenlabs_agent_session.py`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_VAR_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def substitute(text: str, variables: dict[str, Any]) -> str:
    """`{{name}}` placeholders filled from the dynamic variables (unknown ones left as-is)."""
    return _VAR_RE.sub(lambda m: str(variables.get(m.group(1), m.group(0))), text)


@dataclass(frozen=True)
class AgentConfig:
    """The simulated agent's dashboard configuration (what overrides cannot change)."""

    prompt: str
    first_message: str
    client_tools: list[str]
    workspace_tools: dict[str, str]  # tool id -> client tool name (what tool_ids may pick)
    allowed_overrides: frozenset[str]
    ms_per_char: float
    chunk_bytes: int
    ping_interval_s: float
    tool_timeout_s: float


def override_paths(override: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of `conversation_config_override` (agent.prompt.prompt...)."""
    paths: list[str] = []
    for key, value in override.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths += override_paths(value, path + ".")
        else:
            paths.append(path)
    return paths
