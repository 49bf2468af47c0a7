"""Every table, importable from one place (Alembic's metadata). Money is in minor units."""

from __future__ import annotations

from shared.db.base import Base, new_id
from shared.db.calls import Call, CallEvent, ToolInvocation, TranscriptLine, Turn
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
    "Base",
    "Booking",
    "CalendarConnection",
    "Call",
    "CallEvent",
    "Closure",
    "Customer",
    "KnowledgeItem",
    "Message",
    "OpeningHours",
    "PhoneNumber",
    "Resource",
    "ResourceService",
    "Service",
    "Tenant",
    "ToolInvocation",
    "TranscriptLine",
    "Turn",
    "new_id",
]
