"""Run one tool request from the call log, exactly once per tool call id.

The claim is race-free: the `tool_invocations` row is inserted first (`ON CONFLICT DO
NOTHING`) in the same transaction as the handler's writes, and the row is completed and
committed with them. A concurrent execution of the same tool call id waits on that row; if the
first commits, it finds the row taken and returns the stored result, and if the first fails
(rolls back), it runs the tool itself. So two executions never book twice, and every execution
of one tool call id appends the same result.

A request carries the brain's deadline (`deadline_at`): right before the commit, inside the
transaction, the tool's writes are rolled back if the deadline has passed, and the call is
stored as a deadline miss instead; so nothing is booked after the brain told the caller it
could not be done. The `tool_invocations` row says ok only with no error, and an error text
only with ok=false."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tools.handlers import HANDLERS, ToolContext, ToolError
from shared.bus.streams import CallLog, decode_entries
from shared.contract import events as ev
from shared.db.models import ToolInvocation
from shared.observability.metrics import Metrics
from shared.runtime.logs import tenant_var
from shared.runtime.telemetry import context_from, tracer
from shared.tenancy.tool_specs import INTENT_TOOLS, SPECS, normalize_phone

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

GARBLED = "The request was garbled; please ask again."
FAILED = "I couldn't complete that just now; please try again in a moment."
TOO_LATE = "The system did not answer in time. Please try again."


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ToolsDeps:
    """What every tool call on this replica shares."""

    log: CallLog
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = field(default=_utc_now)  # "now" for scheduling
    wall: Callable[[], float] = field(default=time.time)  # epoch s, against request deadlines
    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics


@dataclass(frozen=True)
class Outcome:
    """A tool call's stored result: ok, and the JSON content the LLM sees."""

    ok: bool
    content: str


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
        tenant_var.set(request.tenant_id or None)
        began = time.perf_counter()
        outcome = await run_request(deps, call_sid, request)
        tool = request.name if request.name in HANDLERS else "unknown"  # bounded label values
        deps.metrics.tool_done(tool, outcome.ok, time.perf_counter() - began)
        kind = INTENT_TOOLS.get(request.name)
        if kind is not None and outcome.ok:
            started = await _call_started(deps, call_sid)
            await deps.log.append(
                ev.CallIntent(
                    call_sid=call_sid,
                    tenant_id=request.tenant_id,
                    kind="transfer" if kind == "transfer" else "end",
                    target=started.transfer_number if started and kind == "transfer" else "",
                    reason=request.name,
                    turn_id=request.turn_id,
                )
            )
        await deps.log.append(
            ev.ToolResult(
                call_sid=call_sid,
                tenant_id=request.tenant_id,
                turn_id=request.turn_id,
                tool_call_id=request.tool_call_id,
                name=request.name,
                ok=outcome.ok,
                content=outcome.content,
            )
        )


async def run_request(deps: ToolsDeps, call_sid: str, request: ev.ToolRequested) -> Outcome:
    """The result of a tool call: run once and stored, or the stored first result."""
    started = await _call_started(deps, call_sid)
    ctx = ToolContext(
        tenant_id=request.tenant_id,
        caller=_caller_number(started),
        call_sid=call_sid,
        tool_call_id=request.tool_call_id,
        now=deps.clock(),
        transfer_number=started.transfer_number if started else "",
    )
    async with deps.sessions() as session:
        try:
            outcome = await _claim_and_run(session, ctx, request, deps.wall)
        except Exception:
            log.exception("tool %s (%s) failed", request.name, request.tool_call_id)
            await session.rollback()
            return await _store_failure(session, ctx, request)
    if outcome is None:
        async with deps.sessions() as session:
            return await _stored(session, request.tool_call_id)
    for action in ctx.after_commit:
        async with deps.sessions() as session:
            try:
                await action(session)
            except Exception:
                log.exception("after-commit step of tool call %s failed", request.tool_call_id)
    return outcome


async def _claim(session: AsyncSession, ctx: ToolContext, request: ev.ToolRequested) -> bool:
    claimed = await session.scalar(
        insert(ToolInvocation)
        .values(
            tool_call_id=request.tool_call_id,
            call_sid=ctx.call_sid,
            tenant_id=request.tenant_id or None,
            name=request.name,
            arguments={},
            ok=False,
            result="",
        )
        .on_conflict_do_nothing(index_elements=["tool_call_id"])
        .returning(ToolInvocation.tool_call_id)
    )
    return claimed is not None


async def _complete(
    session: AsyncSession,
    tool_call_id: str,
    ok: bool,
    content: str,
    args: dict[str, Any],
    error: str | None = None,
) -> None:
    """Store the result; the error column is set exactly when the call did not succeed."""
    await session.execute(
        update(ToolInvocation)
        .where(ToolInvocation.tool_call_id == tool_call_id)
        .values(ok=ok, result=content, arguments=args, error=None if ok else (error or content))
    )


def seconds_late(request: ev.ToolRequested, now: float) -> float:
    """How far past the request's deadline `now` (epoch s) is (<= 0: in time, or no deadline)."""
    if not request.deadline_at:
        return 0.0
    return now - request.deadline_at


async def _claim_and_run(
    session: AsyncSession,
    ctx: ToolContext,
    request: ev.ToolRequested,
    clock: Callable[[], float],
) -> Outcome | None:
    """Claim the tool call id and run it in one transaction; None if it was already claimed.
    The deadline is checked last, inside the transaction: a miss commits only the miss."""
    if not await _claim(session, ctx, request):
        await session.rollback()
        return None
    late = seconds_late(request, clock())
    if late <= 0:
        ok, content, args = await _run(session, ctx, request)
        late = seconds_late(request, clock())
        if late <= 0:
            await _complete(session, request.tool_call_id, ok, content, args)
            await session.commit()
            return Outcome(ok, content)
        await session.rollback()  # the brain has given up: undo every write of the tool
        ctx.after_commit.clear()
        if not await _claim(session, ctx, request):
            await session.rollback()
            return None
    log.warning(
        "tool %s (%s) missed its deadline by %.3f s; nothing committed",
        request.name,
        request.tool_call_id,
        late,
    )
    miss = f"deadline missed by {late * 1000:.0f} ms: nothing was committed"
    await _complete(
        session, request.tool_call_id, False, _error(TOO_LATE), _raw_args(request), miss
    )
    await session.commit()
    return Outcome(False, _error(TOO_LATE))


async def _store_failure(
    session: AsyncSession, ctx: ToolContext, request: ev.ToolRequested
) -> Outcome:
    """Record an unexpected failure as the call's result (unless another run stored one)."""
    if await _claim(session, ctx, request):
        await _complete(session, request.tool_call_id, False, _error(FAILED), _raw_args(request))
        await session.commit()
        return Outcome(False, _error(FAILED))
    await session.rollback()
    return await _stored(session, request.tool_call_id)


async def _stored(session: AsyncSession, tool_call_id: str) -> Outcome:
    row = (
        await session.execute(
            select(ToolInvocation.ok, ToolInvocation.result).where(
                ToolInvocation.tool_call_id == tool_call_id
            )
        )
    ).one()
    return Outcome(bool(row.ok), str(row.result))


def _raw_args(request: ev.ToolRequested) -> dict[str, Any]:
    try:
        raw = json.loads(request.arguments or "{}")
    except json.JSONDecodeError:
        raw = None
    return raw if isinstance(raw, dict) else {"_unparsed": request.arguments[:2000]}


async def _run(
    session: AsyncSession, ctx: ToolContext, request: ev.ToolRequested
) -> tuple[bool, str, dict[str, Any]]:
    raw = _raw_args(request)
    if "_unparsed" in raw:
        return False, _error(GARBLED), raw
    spec, handler = SPECS.get(request.name), HANDLERS.get(request.name)
    if spec is None or handler is None:
        return False, _error(f"I can't do '{request.name}' here."), raw
    try:
        args = spec.args.model_validate(raw)
        async with session.begin_nested():  # an error undoes the handler's partial writes
            result = await handler(session, ctx, args)
    except ValidationError as exc:
        return False, _error(_problems(exc)), raw
    except ToolError as exc:
        return False, json.dumps(exc.payload()), raw
    return True, json.dumps(result), raw


def _problems(exc: ValidationError) -> str:
    """Validation errors as one sentence the agent can act on."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "request"
        if err["type"] == "missing":
            parts.append(f"{where} is missing")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{where} is not something I can use")
        else:
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "Some details were not right: " + "; ".join(parts) + "."


def _error(message: str) -> str:
    return json.dumps({"error": message})


async def _call_started(deps: ToolsDeps, call_sid: str) -> ev.CallStarted | None:
    """The call.started event (among the first entries of the log)."""
    raw: Any = await deps.log.redis.xrange(deps.log.key(call_sid), "-", "+", count=10)
    return next((e for _, e in decode_entries(raw) if isinstance(e, ev.CallStarted)), None)


def _caller_number(started: ev.CallStarted | None) -> str:
    """The other party's number (From of an inbound call, To of an outbound one), E.164."""
    if started is None:
        return ""
    number = started.to_number if started.direction == "outbound" else started.from_number
    try:
        return normalize_phone(number)
    except ValueError:
        return ""
