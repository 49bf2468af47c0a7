"""Request/response models of the catalog: services, staff, opening hours and closures."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, ClassVar, Self

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from services.gateway.admin.params import BIGINT_MAX
from services.gateway.admin.schemas import Currency, InputModel, OutputModel, PatchModel

DAY_MINUTES = 24 * 60
INT_MAX = 2**31 - 1
_STAFF_ID_DOC = "Staff member this applies to; null for the whole business."
StaffRef = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
ServiceRef = Annotated[str, Field(min_length=1, max_length=64)]
_WEEKDAY_DOC = "Day of the week: 0 = Monday ... 6 = Sunday."


# --- services -----------------------------------------------------------------------------


class ServiceIn(InputModel):
    """Something the business sells."""

    name: str = Field(min_length=1, max_length=200, description="Unique name within the tenant.")
    duration_min: int = Field(gt=0, le=DAY_MINUTES, description="Length of one booking, minutes.")
    price_minor: int = Field(ge=0, le=INT_MAX, description="Price in minor units (2500 = 25.00).")
    currency: Currency | None = Field(None, description="Defaults to the tenant's currency.")
    buffer_min: int = Field(
        0, ge=0, le=DAY_MINUTES, description="Time blocked after each booking, minutes."
    )
    description: str = Field("", max_length=5000, description="What the agent may tell callers.")


class ServicePatch(PatchModel):
    """Changes to a service."""

    name: str | None = Field(None, min_length=1, max_length=200, description="Unique name.")
    duration_min: int | None = Field(None, gt=0, le=DAY_MINUTES, description="Length, minutes.")
    price_minor: int | None = Field(None, ge=0, le=INT_MAX, description="Price in minor units.")
    currency: Currency | None = None
    buffer_min: int | None = Field(None, ge=0, le=DAY_MINUTES, description="Buffer, minutes.")
    description: str | None = Field(None, max_length=5000, description="Description.")


class ServiceOut(OutputModel):
    """A service of this tenant."""

    id: str = Field(description="Service id.")
    name: str = Field(description="Name.")
    duration_min: int = Field(description="Length of one booking, minutes.")
    price_minor: int = Field(description="Price in minor units.")
    currency: str = Field(description="ISO 4217 currency.")
    buffer_min: int = Field(description="Time blocked after each booking, minutes.")
    description: str = Field(description="What the agent may tell callers.")


# --- staff --------------------------------------------------------------------------------


def _unique(ids: list[str]) -> list[str]:
    return sorted(set(ids))


ServiceIds = Annotated[list[ServiceRef], AfterValidator(_unique)]


class StaffIn(InputModel):
    """A staff member (or another bookable resource: a chair, a room, a table)."""

    name: str = Field(min_length=1, max_length=200, description="Unique name within the tenant.")
    kind: str = Field(
        "staff", pattern=r"^[a-z][a-z_-]{0,15}$", description="staff, chair, room, table, ..."
    )
    capacity: int = Field(1, ge=1, le=1000, description="Parties it can take at once.")
    active: bool = Field(True, description="Inactive staff are never offered to callers.")
    service_ids: ServiceIds = Field(
        default_factory=list, max_length=500, description="Ids of the services this staff performs."
    )


class StaffPatch(PatchModel):
    """Changes to a staff member; `service_ids`, when sent, replaces the whole set."""

    name: str | None = Field(None, min_length=1, max_length=200, description="Unique name.")
    kind: str | None = Field(None, pattern=r"^[a-z][a-z_-]{0,15}$", description="Kind.")
    capacity: int | None = Field(None, ge=1, le=1000, description="Parties at once.")
    active: bool | None = Field(None, description="Whether callers can book this staff.")
    service_ids: ServiceIds | None = Field(
        None, max_length=500, description="Ids of the services this staff performs."
    )


class StaffOut(OutputModel):
    """A staff member of this tenant."""

    id: int = Field(description="Staff id.")
    name: str = Field(description="Name.")
    kind: str = Field(description="staff, chair, room, table, ...")
    capacity: int = Field(description="Parties it can take at once.")
    active: bool = Field(description="Whether callers can book it.")
    service_ids: list[str] = Field(description="Ids of the services it performs.")


# --- opening hours ------------------------------------------------------------------------


def _naive(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("give a local wall-clock time without an offset (e.g. 09:00)")
    return value


LOCAL_TIME_SCHEMA = WithJsonSchema(
    {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$"}
)
LocalTime = Annotated[time, AfterValidator(_naive), LOCAL_TIME_SCHEMA]
"""A local wall-clock time (HH:MM[:SS]); documented as a pattern, not `format: time`, which
(RFC 3339 full-time) requires the UTC offset the API refuses."""


def check_hours(opens: time, closes: time) -> None:
    """Raise ValueError unless the interval is non-empty (same-day intervals only)."""
    if opens >= closes:
        raise ValueError(
            f"opens ({opens.isoformat('minutes')}) must be before closes "
            f"({closes.isoformat('minutes')}); split intervals that pass midnight"
        )


class HoursIn(InputModel):
    """A weekly opening interval, local time of the tenant."""

    staff_id: StaffRef | None = Field(None, description=_STAFF_ID_DOC)
    weekday: int = Field(ge=0, le=6, description=_WEEKDAY_DOC)
    opens: LocalTime = Field(description="Opening time, local (HH:MM).", examples=["09:00"])
    closes: LocalTime = Field(description="Closing time, local (HH:MM), after opens.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        check_hours(self.opens, self.closes)
        return self


class HoursPatch(PatchModel):
    """Changes to an opening interval; the result must still open before it closes."""

    nullable: ClassVar[frozenset[str]] = frozenset({"staff_id"})
    staff_id: StaffRef | None = Field(None, description=_STAFF_ID_DOC)
    weekday: int | None = Field(None, ge=0, le=6, description=_WEEKDAY_DOC)
    opens: LocalTime | None = Field(None, description="Opening time, local (HH:MM).")
    closes: LocalTime | None = Field(None, description="Closing time, local (HH:MM).")


class HoursOut(OutputModel):
    """A weekly opening interval."""

    id: str = Field(description="Opening-hours id.")
    staff_id: int | None = Field(description=_STAFF_ID_DOC)
    weekday: int = Field(description=_WEEKDAY_DOC)
    opens: Annotated[time, LOCAL_TIME_SCHEMA] = Field(description="Opening time, local.")
    closes: Annotated[time, LOCAL_TIME_SCHEMA] = Field(description="Closing time, local.")


# --- closures -----------------------------------------------------------------------------


def check_closure(starts_on: date, ends_on: date) -> None:
    """Raise ValueError unless the date range is ordered."""
    if starts_on > ends_on:
        raise ValueError(f"starts_on ({starts_on}) must not be after ends_on ({ends_on})")


class ClosureIn(InputModel):
    """Dates the business (or one staff member) is closed, both inclusive."""

    staff_id: StaffRef | None = Field(None, description=_STAFF_ID_DOC)
    starts_on: date = Field(description="First closed day.")
    ends_on: date = Field(description="Last closed day (inclusive).")
    reason: str = Field("", max_length=500, description="Why (the agent may say it).")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        check_closure(self.starts_on, self.ends_on)
        return self


class ClosurePatch(PatchModel):
    """Changes to a closure; the result must still be ordered."""

    nullable: ClassVar[frozenset[str]] = frozenset({"staff_id"})
    staff_id: StaffRef | None = Field(None, description=_STAFF_ID_DOC)
    starts_on: date | None = Field(None, description="First closed day.")
    ends_on: date | None = Field(None, description="Last closed day (inclusive).")
    reason: str | None = Field(None, max_length=500, description="Why.")


class ClosureOut(OutputModel):
    """A closure."""

    id: str = Field(description="Closure id.")
    staff_id: int | None = Field(description=_STAFF_ID_DOC)
    starts_on: date = Field(description="First closed day.")
    ends_on: date = Field(description="Last closed day (inclusive).")
    reason: str = Field(description="Why.")
