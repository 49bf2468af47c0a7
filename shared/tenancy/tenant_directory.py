"""Read a tenant's profile (business data the agent needs) from Postgres."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contract.conversation_knobs import ConversationKnobs
from shared.db.models import (
    AssistantSettings,
    Closure,
    KnowledgeItem,
    OpeningHours,
    PhoneNumber,
    Resource,
    ResourceService,
    Service,
    Tenant,
)

# weekday (0 = Monday) -> opening intervals in local time; a missing weekday is closed
WeeklyHours = dict[int, list[tuple[time, time]]]
UPCOMING_CLOSURES = 10


class ServiceInfo(BaseModel):
    """A service as the agent talks about it."""

    name: str
    duration_min: int
    price_minor: int
    currency: str
    buffer_min: int = 0
    description: str = ""

    def price_text(self) -> str:
        """Price in words a caller understands, e.g. '£25' or '£7.50'."""
        symbol = {"GBP": "£", "USD": "$", "EUR": "€"}.get(self.currency, self.currency + " ")
        whole, minor = divmod(self.price_minor, 100)
        return f"{symbol}{whole}" if minor == 0 else f"{symbol}{whole}.{minor:02d}"


class StaffInfo(BaseModel):
    """An active staff member, table or room and what it is booked for."""

    id: int
    name: str
    kind: str = "staff"
    capacity: int = 1
    services: list[str] = Field(default_factory=list)
    hours: WeeklyHours | None = None  # None: available whenever the business is open


class ClosureInfo(BaseModel):
    """Days (inclusive) the business, or one staff member (`staff`), is closed."""

    starts_on: date
    ends_on: date
    reason: str = ""
    staff: str | None = None


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
    currency: str = "GBP"
    prompt_template: str | None = None
    max_call_minutes: int = 15
    conversation: ConversationKnobs = Field(default_factory=ConversationKnobs)
    transfer_number: str | None = None
    hours: WeeklyHours = Field(default_factory=dict)
    staff: list[StaffInfo] = Field(default_factory=list)
    closures: list[ClosureInfo] = Field(default_factory=list)  # ending today or later
    policies: list[str] = Field(default_factory=list)
    min_notice_min: int = 60
    slot_step_min: int = 15
    horizon_days: int = 60
    recording: bool = True
    recording_disclosure: str = ""
    speech: str = "vendor"  # 'local': the self-hosted speech service hears and speaks its calls


async def load_tenant(
    session: AsyncSession, tenant_id: str, today: date | None = None
) -> TenantProfile | None:
    """The profile of a tenant (without number-specific routing). `today` (the tenant's local
    date by default) decides which closures are upcoming."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    return await _profile(session, tenant, None, today)


async def find_by_number(
    session: AsyncSession, e164: str, today: date | None = None
) -> TenantProfile | None:
    """The profile of the tenant that owns `e164`, or None for an unknown number."""
    number = await session.get(PhoneNumber, e164)
    if number is None:
        return None
    tenant = await session.get(Tenant, number.tenant_id)
    if tenant is None:
        return None
    return await _profile(session, tenant, number, today)


def _weekly(rows: list[OpeningHours]) -> WeeklyHours:
    hours: WeeklyHours = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.weekday, r.opens)):
        hours[row.weekday].append((row.opens, row.closes))
    return dict(hours)


async def _staff(
    session: AsyncSession, tenant_id: str, hours: list[OpeningHours]
) -> list[StaffInfo]:
    resources = (
        await session.scalars(
            select(Resource)
            .where(Resource.tenant_id == tenant_id, Resource.active.is_(True))
            .order_by(Resource.id)
        )
    ).all()
    performs: defaultdict[int, list[str]] = defaultdict(list)
    links = await session.execute(
        select(ResourceService.resource_id, Service.name)
        .join(Service, Service.id == ResourceService.service_id)
        .where(Service.tenant_id == tenant_id)
        .order_by(Service.name)
    )
    for resource_id, service_name in links:
        performs[resource_id].append(service_name)
    own_hours: defaultdict[int, list[OpeningHours]] = defaultdict(list)
    for row in hours:
        if row.resource_id is not None:
            own_hours[row.resource_id].append(row)
    return [
        StaffInfo(
            id=r.id,
            name=r.name,
            kind=r.kind,
            capacity=r.capacity,
            services=performs[r.id],
            hours=_weekly(own_hours[r.id]) if r.id in own_hours else None,
        )
        for r in resources
    ]


async def _closures(
    session: AsyncSession, tenant_id: str, today: date, staff: list[StaffInfo]
) -> list[ClosureInfo]:
    names = {s.id: s.name for s in staff}
    rows = await session.scalars(
        select(Closure)
        .where(Closure.tenant_id == tenant_id, Closure.ends_on >= today)
        .order_by(Closure.starts_on, Closure.ends_on)
    )
    closures = [
        ClosureInfo(
            starts_on=c.starts_on,
            ends_on=c.ends_on,
            reason=c.reason,
            staff=names.get(c.resource_id) if c.resource_id is not None else None,
        )
        for c in rows
        # a closure of a deactivated staff member no longer matters to callers
        if c.resource_id is None or c.resource_id in names
    ]
    return closures[:UPCOMING_CLOSURES]


async def _profile(
    session: AsyncSession, tenant: Tenant, number: PhoneNumber | None, today: date | None
) -> TenantProfile:
    settings = await session.get(AssistantSettings, tenant.id)
    services = (
        await session.scalars(
            select(Service).where(Service.tenant_id == tenant.id).order_by(Service.name)
        )
    ).all()
    faq = (
        await session.scalars(
            select(KnowledgeItem)
            .where(KnowledgeItem.tenant_id == tenant.id)
            .order_by(KnowledgeItem.question)
        )
    ).all()
    hours = list(
        await session.scalars(select(OpeningHours).where(OpeningHours.tenant_id == tenant.id))
    )
    staff = await _staff(session, tenant.id, hours)
    local_today = today or datetime.now(ZoneInfo(tenant.timezone)).date()
    return TenantProfile(
        tenant_id=tenant.id,
        name=tenant.name,
        address=tenant.address,
        timezone=tenant.timezone,
        currency=tenant.currency,
        number=number.e164 if number else "",
        pipeline=number.pipeline if number else "cascade",
        voice=number.voice if number else "",
        transfer_number=number.transfer_number if number else None,
        greeting=(
            settings.greeting
            if settings and settings.greeting
            else f"Thanks for calling {tenant.name}. How can I help you today?"
        ),
        custom_prompt=settings.custom_prompt if settings else None,
        prompt_template=settings.prompt_template if settings else None,
        language=settings.language if settings else "en",
        max_call_minutes=settings.max_call_minutes if settings else 15,
        conversation=ConversationKnobs.model_validate(settings.conversation if settings else {}),
        services=[
            ServiceInfo(
                name=s.name,
                duration_min=s.duration_min,
                price_minor=s.price_minor,
                currency=s.currency,
                buffer_min=s.buffer_min,
                description=s.description,
            )
            for s in services
        ],
        faq=[(k.question, k.answer) for k in faq],
        hours=_weekly([h for h in hours if h.resource_id is None]),
        staff=staff,
        closures=await _closures(session, tenant.id, local_today, staff),
        policies=[line for line in tenant.policies.splitlines() if line.strip()],
        min_notice_min=tenant.min_notice_min,
        slot_step_min=tenant.slot_step_min,
        horizon_days=tenant.horizon_days,
        recording=tenant.recording_enabled,
        recording_disclosure=tenant.recording_disclosure,
        speech=tenant.speech,
    )
