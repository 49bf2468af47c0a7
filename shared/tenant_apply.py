"""Create or update a whole business from one YAML document (`frontdesk tenant apply`)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import AssistantSettings, KnowledgeItem, PhoneNumber, Service, Tenant


class NumberSpec(BaseModel):
    """A phone number of the business."""

    e164: str = Field(pattern=r"^\+[1-9]\d{6,14}$")
    pipeline: str = "cascade"
    voice: str = ""
    transfer_number: str | None = None


class ServiceSpec(BaseModel):
    """A service with its price in major units (25.00 = £25)."""

    name: str
    duration_min: int = Field(gt=0)
    price: Decimal = Field(ge=0)


class KnowledgeSpec(BaseModel):
    """One FAQ entry."""

    q: str
    a: str


class AssistantSpec(BaseModel):
    """How the agent greets and talks."""

    greeting: str = ""
    custom_prompt: str | None = None
    language: str = "en"


class TenantSpec(BaseModel):
    """A whole business as written in YAML."""

    slug: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    address: str = ""
    timezone: str = "UTC"
    currency: str = "GBP"
    numbers: list[NumberSpec] = []
    assistant: AssistantSpec = AssistantSpec()
    services: list[ServiceSpec] = []
    knowledge: list[KnowledgeSpec] = []


def load_spec(path: str | Path) -> TenantSpec:
    """Parse and validate a tenant YAML file."""
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return TenantSpec.model_validate(data)


async def apply(session: AsyncSession, spec: TenantSpec) -> str:
    """Upsert the tenant and replace its numbers, services and knowledge; returns tenant id."""
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == spec.slug))
    if tenant is None:
        tenant = Tenant(slug=spec.slug, name=spec.name)
        session.add(tenant)
    tenant.name, tenant.address = spec.name, spec.address
    tenant.timezone, tenant.currency = spec.timezone, spec.currency
    await session.flush()
    for table in (PhoneNumber, Service, KnowledgeItem, AssistantSettings):
        await session.execute(delete(table).where(table.tenant_id == tenant.id))
    session.add(AssistantSettings(tenant_id=tenant.id, **spec.assistant.model_dump()))
    for n in spec.numbers:
        session.add(PhoneNumber(tenant_id=tenant.id, **n.model_dump()))
    for s in spec.services:
        session.add(
            Service(
                tenant_id=tenant.id,
                name=s.name,
                duration_min=s.duration_min,
                price_minor=int(s.price * 100),
                currency=spec.currency,
            )
        )
    for k in spec.knowledge:
        session.add(KnowledgeItem(tenant_id=tenant.id, question=k.q, answer=k.a))
    await session.commit()
    return tenant.id
