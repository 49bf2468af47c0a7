"""`/v1/analysis/schema`: the structured fields the post-call analysis extracts for a tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from services.gateway.admin.auth import TenantId
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, invalid_body, not_found
from services.gateway.calls_api.schemas import AnalysisSchemaIn, AnalysisSchemaOut
from shared.db.models import TenantAnalysisSchema

router = APIRouter(prefix="/v1/analysis", tags=["analysis"], responses=AUTH_ERRORS)
TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
MAX_PROPERTIES = 50


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why `schema` is not a usable flat object schema, or None."""
    if schema.get("type") != "object":
        return "the schema's type must be 'object'"
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return "the schema needs a non-empty 'properties' object"
    if len(properties) > MAX_PROPERTIES:
        return f"at most {MAX_PROPERTIES} properties"
    for name, spec in properties.items():
        kinds = spec.get("type") if isinstance(spec, dict) else None
        listed = [kinds] if isinstance(kinds, str) else kinds
        if not isinstance(listed, list) or not listed or not set(listed) <= TYPES:
            return f"property {name!r} needs a type among {sorted(TYPES)}"
    required = schema.get("required", [])
    if not isinstance(required, list) or not set(required) <= set(properties):
        return "'required' must list declared properties"
    return None


@router.get(
    "/schema",
    response_model=AnalysisSchemaOut,
    summary="The analysis schema",
    responses=error_doc(404, "No schema set: only summary and success are extracted."),
)
async def get_schema(tenant_id: TenantId, session: Session) -> TenantAnalysisSchema:
    """The JSON schema of the fields extracted from each call."""
    row = await session.get(TenantAnalysisSchema, tenant_id)
    if row is None:
        raise not_found("analysis schema")
    return row


@router.put("/schema", response_model=AnalysisSchemaOut, summary="Set the analysis schema")
async def put_schema(
    tenant_id: TenantId, session: Session, body: AnalysisSchemaIn
) -> TenantAnalysisSchema:
    """Fields to extract from calls from now on (a flat JSON schema of an object)."""
    problem = schema_problem(body.json_schema)
    if problem is not None:
        raise invalid_body("json_schema", problem, body.json_schema)
    values = {"json_schema": body.json_schema, "success_criteria": body.success_criteria}
    await session.execute(
        insert(TenantAnalysisSchema)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(
            index_elements=["tenant_id"], set_={**values, "updated_at": func.now()}
        )
    )
    await session.commit()
    row = await session.get(TenantAnalysisSchema, tenant_id, populate_existing=True)
    assert row is not None
    return row
