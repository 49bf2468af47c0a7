"""Post-call analysis: one OpenAI-compatible chat completion over the stored transcript writes a
summary, a success flag and the tenant's structured fields (validated against its schema)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from openai import AsyncOpenAI, OpenAIError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.recorder.analysis_fields import check_fields
from shared.db.models import CallAnalysis, TenantAnalysisSchema, TranscriptLine, UsageRecord
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)

MARKER = "FrontDesk post-call analysis"
"""Starts the request's last user message, so a scripted model can recognise the request."""
INSTRUCTION = f"{MARKER}: answer with the JSON object described above, and nothing else."
DEFAULT_SUCCESS = "the caller got what they called for (an answer, a booking, a message taken)"
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class AnalysisError(ValueError):
    """The model's reply is not a usable analysis."""


@dataclass
class AnalysisResult:
    """What the model concluded about a call."""

    summary: str
    success: bool | None
    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def build_messages(
    transcript: list[tuple[str, str]], schema: dict[str, Any] | None, success_criteria: str
) -> list[dict[str, Any]]:
    """Chat messages asking for the analysis of `transcript` [(role, text)]."""
    shape: dict[str, Any] = {
        "summary": "two or three sentences: who called, what they wanted, what happened",
        "success": f"true when {success_criteria or DEFAULT_SUCCESS}, else false",
    }
    if schema:
        shape["fields"] = f"an object matching this JSON schema: {json.dumps(schema)}"
    system = (
        "You analyse phone calls answered by an AI receptionist. Reply with one JSON object "
        f"with these keys: {json.dumps(shape)}. No prose, no code fences."
    )
    lines = "\n".join(f"{role}: {text}" for role, text in transcript) or "(nobody spoke)"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Transcript of the call:\n{lines}"},
        {"role": "user", "content": INSTRUCTION},
    ]


def parse_reply(text: str, schema: dict[str, Any] | None) -> AnalysisResult:
    """The analysis in a model reply (JSON, possibly fenced or surrounded by prose)."""
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise AnalysisError(f"reply holds no JSON object: {text[:200]!r}")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"reply is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AnalysisError("reply is not a JSON object")
    summary = data.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise AnalysisError("reply has no summary")
    success = data.get("success")
    result = AnalysisResult(summary.strip(), success if isinstance(success, bool) else None)
    if success is not None and not isinstance(success, bool):
        result.problems.append("success: expected boolean")
    if schema:
        result.fields, problems = check_fields(schema, data.get("fields", {}))
        result.problems += problems
    return result


async def analyse_call(
    session: AsyncSession,
    client: AsyncOpenAI,
    settings: Settings,
    call_sid: str,
    tenant_id: str | None,
) -> None:
    """Store the call's analysis (status done, or failed with the error); idempotent: a call
    that already has one is left alone. The caller commits."""
    if await session.get(CallAnalysis, call_sid) is not None:
        return
    model = settings.analysis_model or settings.llm_model
    rows = await session.execute(
        select(TranscriptLine.role, TranscriptLine.text)
        .where(TranscriptLine.call_sid == call_sid)
        .order_by(TranscriptLine.at, TranscriptLine.id)
    )
    transcript = [(role, text) for role, text in rows.all()]
    tenant_schema = (
        await session.get(TenantAnalysisSchema, tenant_id) if tenant_id is not None else None
    )
    schema = tenant_schema.json_schema if tenant_schema is not None else None
    criteria = tenant_schema.success_criteria if tenant_schema is not None else ""
    values: dict[str, Any] = {"call_sid": call_sid, "tenant_id": tenant_id, "model": model}
    try:
        reply, usage = await _complete(
            client, settings, model, build_messages(transcript, schema, criteria)
        )
        await _meter(session, call_sid, tenant_id, model, usage)
        result = parse_reply(reply, schema)
    except (OpenAIError, AnalysisError) as exc:
        log.warning("analysis of %s failed: %s", call_sid, exc)
        values |= {"status": "failed", "summary": "", "fields": {}, "error": str(exc)[:1000]}
    else:
        values |= {
            "status": "failed" if result.problems else "done",
            "summary": result.summary,
            "success": result.success,
            "fields": result.fields,
            "error": "; ".join(result.problems) or None,
        }
    await session.execute(
        insert(CallAnalysis).values(**values).on_conflict_do_nothing(index_elements=["call_sid"])
    )


async def _complete(
    client: AsyncOpenAI, settings: Settings, model: str, messages: list[dict[str, Any]]
) -> tuple[str, dict[str, int]]:
    kwargs: dict[str, Any] = {}
    if settings.analysis_json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    create: Any = client.chat.completions.create
    response = await create(
        model=model, messages=messages, temperature=0, timeout=settings.analysis_timeout_s, **kwargs
    )
    if not response.choices:
        raise AnalysisError("the model returned no choices")
    text = response.choices[0].message.content or ""
    usage: dict[str, int] = {}
    if response.usage is not None:
        details = response.usage.prompt_tokens_details
        cached = (details.cached_tokens or 0) if details is not None else 0
        usage = {
            "prompt_tokens": response.usage.prompt_tokens - cached,
            "cached_prompt_tokens": cached,
            "completion_tokens": response.usage.completion_tokens,
        }
    return text, usage


async def _meter(
    session: AsyncSession,
    call_sid: str,
    tenant_id: str | None,
    model: str,
    usage: dict[str, int],
) -> None:
    rows = [
        {
            "call_sid": call_sid,
            "tenant_id": tenant_id,
            "source": "analysis",
            "provider": model,
            "metric": metric,
            "quantity": Decimal(quantity),
            "at": func.now(),
        }
        for metric, quantity in usage.items()
        if quantity > 0
    ]
    if rows:
        await session.execute(
            insert(UsageRecord)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["call_sid", "source", "provider", "metric"])
        )
