"""The functions the agent may call: one pydantic argument model each, from which the OpenAI
function schema is generated. The tools service implements them; the brain offers them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class NoArgs(BaseModel):
    """A tool without arguments."""

    model_config = ConfigDict(extra="forbid")


class ToolSpec(BaseModel):
    """A function's name, description for the LLM, and argument model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    description: str
    args: type[BaseModel]

    def openai_schema(self) -> dict[str, Any]:
        """The `tools[]` entry for a chat completion request."""
        params = self.args.model_json_schema()
        params.pop("title", None)
        params.pop("description", None)
        params.setdefault("properties", {})
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            name="get_business_info",
            description="The business's name, address, opening information and services.",
            args=NoArgs,
        ),
    )
}


def openai_tools() -> list[dict[str, Any]]:
    """Every tool as an OpenAI function schema."""
    return [spec.openai_schema() for spec in SPECS.values()]
