"""Every table, importable from one place (Alembic's metadata). Money is in minor units."""

from __future__ import annotations

from shared.db.base import Base, new_id
from shared.db.billing import (
    CallAnalysis,
    CallCost,
    CostLineItem,
    TenantAnalysisSchema,
    UsageRecord,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared.db.calls import (
    BargeInRecord,
    Call,
    CallEvent,
    DtmfPress,
    ToolInvocation,
    TranscriptLine,
    Turn,
)
from shared.db.dead_letters import DeadLetterRow
from shared.db.outbound import OutboundCallRequest
from shared.db.scheduling import Booking, Customer, Message
from shared.db.tenancy import (
    ApiKey,
    AssistantSettings,
    CalendarConnection,
    Closure,
    KnowledgeItem,
    OpeningHours,
    PhoneNumber,
    Resource,
    ResourceService,
    Service,
    Tenant,
)

__all__ = [
    "ApiKey",
    "AssistantSettings",
    "BargeInRecord",
    "Base",
    "Booking",
    "CalendarConnection",
    "Call",
    "CallAnalysis",
    "CallCost",
    "CallEvent",
    "Closure",
    "CostLineItem",
    "Customer",
    "DeadLetterRow",
    "DtmfPress",
    "KnowledgeItem",
    "Message",
    "OpeningHours",
    "OutboundCallRequest",
    "PhoneNumber",
    "Resource",
    "ResourceService",
    "Service",
    "Tenant",
    "TenantAnalysisSchema",
    "ToolInvocation",
    "TranscriptLine",
    "Turn",
    "UsageRecord",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "new_id",
]
