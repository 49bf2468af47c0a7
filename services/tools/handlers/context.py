"""What a tool handler gets besides its arguments, and the error it raises for the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

AfterCommit = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class ToolContext:
    """One tool call: whose business, who is calling, and when."""

    tenant_id: str
    caller: str  # the caller's own number, E.164 ("" when withheld)
    call_sid: str
    tool_call_id: str
    now: datetime  # aware
    after_commit: list[AfterCommit] = field(default_factory=list)
    transfer_number: str = ""  # where transfer_to_human sends the caller ("" = nobody)

    def then(self, action: AfterCommit) -> None:
        """Run `action` (with a fresh session) once the tool's transaction has committed."""
        self.after_commit.append(action)


class ToolError(Exception):
    """An error the agent can say to the caller (the message is phrased for that), optionally
    with extra facts for the agent (e.g. `alternatives`)."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def payload(self) -> dict[str, Any]:
        """The JSON object of the tool result."""
        return {"error": self.message, **self.extra}
