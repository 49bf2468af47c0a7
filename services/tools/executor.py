"""Run one tool request from the call log, exactly once per tool call id."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tools.handlers import HANDLERS, ToolError
from shared import events as ev
from shared.bus import CallLog
from shared.db.models import ToolInvocation
from shared.telemetry import context_from, tracer
from shared.tool_specs import SPECS

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


@dataclass
class ToolsDeps:
    """What every tool call on this replica shares."""

    log: CallLog
    sessions: async_sessionmaker[AsyncSession]


async def execute(deps: ToolsDeps, call_sid: str, entry_id: str) -> None:
    """Execute the ToolRequested at `entry_id` and append its ToolResult (idempotent)."""
    found = await deps.log.entries(call_sid, entry_id, entry_id)
    request = found[0][1] if found else None
    if not isinstance(request, ev.ToolRequested):
        log.warning("no tool request at %s in %s", entry_id, call_sid)
        return
    with _tracer.start_as_current_span(
        f"tool {request.name}",
        context=context_from(request.traceparent),
        attributes={"call.sid": call_sid, "tool.call_id": request.tool_call_id},
    ):
        await _execute(deps, call_sid, request)


async def _execute(deps: ToolsDeps, call_sid: str, request: ev.ToolRequested) -> None:
    caller = await _caller_number(deps, call_sid)
    async with deps.sessions() as session:
        previous = await session.get(ToolInvocation, request.tool_call_id)
        if previous is None:
            ok, content, args = await _run(session, request, caller)
            await session.execute(
                insert(ToolInvocation)
                .values(
                    tool_call_id=request.tool_call_id,
                    call_sid=call_sid,
                    tenant_id=request.tenant_id or None,
                    name=request.name,
                    arguments=args,
                    ok=ok,
                    result=content,
                )
                .on_conflict_do_nothing(index_elements=["tool_call_id"])
            )
            await session.commit()
        first = (
            await session.scalars(
                select(ToolInvocation).where(ToolInvocation.tool_call_id == request.tool_call_id)
            )
        ).one()
    await deps.log.append(
        ev.ToolResult(
            call_sid=call_sid,
            tenant_id=request.tenant_id,
            turn_id=request.turn_id,
            tool_call_id=request.tool_call_id,
            name=request.name,
            ok=first.ok,
            content=first.result,
        )
    )


async def _run(
    session: AsyncSession, request: ev.ToolRequested, caller: str
) -> tuple[bool, str, dict[str, Any]]:
    spec, handler = SPECS.get(request.name), HANDLERS.get(request.name)
    try:
        raw = json.loads(request.arguments or "{}")
    except json.JSONDecodeError:
        return False, _error("The request was garbled; please ask again."), {}
    if not isinstance(raw, dict):
        return False, _error("The request was garbled; please ask again."), {}
    if spec is None or handler is None:
        return False, _error(f"I can't do '{request.name}' here."), raw
    try:
        args = spec.args.model_validate(raw)
        result = await handler(session, request.tenant_id, caller, args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return False, _error(f"Some details were not right ({problems})."), raw
    except ToolError as exc:
        return False, _error(str(exc)), raw
    return True, json.dumps(result), raw


def _error(message: str) -> str:
    return json.dumps({"error": message})


async def _caller_number(deps: ToolsDeps, call_sid: str) -> str:
    head = await deps.log.entries(call_sid, "-", "+")
    started = next((e for _, e in head if isinstance(e, ev.CallStarted)), None)
    return started.from_number if started else ""
