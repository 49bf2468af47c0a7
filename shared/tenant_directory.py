"""Read a tenant's profile (business data the agent needs) from Postgres."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import AssistantSettings, KnowledgeItem, PhoneNumber, Service, Tenant


class ServiceInfo(BaseModel):
    """A service as the agent talks about it."""

    name: str
    duration_min: int
    price_minor: int
    currency: str

    def price_text(self) -> str:
        """Price in words a caller understands, e.g. '£25' or '£7.50'."""
        symbol = {"GBP": "£", "USD": "$", "EUR": "€"}.get(self.currency, self.currency + " ")
        whole, minor = divmod(self.price_minor, 100)
        return f"{symbol}{whole}" if minor == 0 else f"{symbol}{whole}.{minor:02d}"


class TenantProfile(BaseModel):
    """Everything about a business the call path needs, read once at call start."""

    tenant_id: str
    name: str
    address: str
    timezone: str
    number: str
    pipeline: str
    voice: str
    greeting: str
    custom_prompt: str | None
    language: str
    services: list[ServiceInfo]
    faq: list[tuple[str, str]]


async def load_tenant(session: AsyncSession, tenant_id: str) -> TenantProfile | None:
    """The profile of a tenant (without number-specific routing)."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    return await _profile(session, tenant, None)


async def find_by_number(session: AsyncSession, e164: str) -> TenantProfile | None:
    """The profile of the tenant that owns `e164`, or None for an unknown number."""
    number = await session.get(PhoneNumber, e164)
    if number is None:
        return None
    tenant = await session.get(Tenant, number.tenant_id)
    if tenant is None:
        return None
    return await _profile(session, tenant, number)


async def _profile(
    session: AsyncSession, tenant: Tenant, number: PhoneNumber | None
) -> TenantProfile:
    settings = await session.get(AssistantSettings, tenant.id)
    services = (
        await session.scalars(
            select(Service).where(Service.tenant_id == tenant.id).order_by(Service.name)
        )
    ).all()
    faq = (
        await session.scalars(select(KnowledgeItem).where(KnowledgeItem.tenant_id == tenant.id))
    ).all()
    return TenantProfile(
        tenant_id=tenant.id,
        name=tenant.name,
        address=tenant.address,
        timezone=tenant.timezone,
        number=number.e164 if number else "",
        pipeline=number.pipeline if number else "cascade",
        voice=number.voice if number else "",
        greeting=(
            settings.greeting
            if settings and settings.greeting
            else f"Thanks for calling {tenant.name}. How can I help you today?"
        ),
        custom_prompt=settings.custom_prompt if settings else None,
        language=settings.language if settings else "en",
        services=[
            ServiceInfo(
                name=s.name,
                duration_min=s.duration_min,
                price_minor=s.price_minor,
                currency=s.currency,
            )
            for s in services
        ],
        faq=[(k.question, k.answer) for k in faq],
    )
