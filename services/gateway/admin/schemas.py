"""Request/response models of the admin API: shared bases, and the tenant, numbers and
knowledge bodies. Catalog and activity bodies live in `catalog_schemas` / `activity_schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

E164_PATTERN = r"^\+[1-9]\d{6,14}$"
Pipeline = Literal["cascade", "deepgram-agent", "elevenlabs-agent"]


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as 'Europe/London'"
        ) from exc
    return value


E164 = Annotated[
    str,
    Field(
        pattern=E164_PATTERN,
        description="Phone number in E.164 form: '+', country code, number (e.g. +441632960001).",
        examples=["+441632960001"],
    ),
]
TimeZoneName = Annotated[
    str,
    Field(max_length=64, description="IANA time zone name.", examples=["Europe/London"]),
    AfterValidator(_known_timezone),
]
Currency = Annotated[
    str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.", examples=["GBP"])
]


class ErrorOut(BaseModel):
    """An error with a human-readable message."""

    detail: str = Field(description="What went wrong.")


Responses = dict[int | str, dict[str, Any]]


def error_doc(code: int, description: str) -> Responses:
    """OpenAPI entry for an error response with an `ErrorOut` body."""
    return {code: {"model": ErrorOut, "description": description}}


AUTH_ERRORS = error_doc(401, "Missing, malformed or unknown API key.")


class InputModel(BaseModel):
    """A request body: unknown fields are rejected, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("text must not contain NUL characters")
        return value


class PatchModel(InputModel):
    """A partial update: only the fields sent are changed; null only where a field allows it."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their new values."""
        return self.model_dump(exclude_unset=True)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The documented schema says what the validator does: `null` is allowed only for
        the fields in `nullable` (the others are optional, but not nullable)."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        for name, prop in schema.get("properties", {}).items():
            options = prop.get("anyOf")
            if name in cls.nullable or not isinstance(options, list):
                continue
            kept = [o for o in options if o.get("type") != "null"]
            if len(kept) == 1:
                del prop["anyOf"]
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
            if prop.get("default", 0) is None:
                del prop["default"]
        return schema


class OutputModel(BaseModel):
    """A response body, readable from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


# --- tenant -------------------------------------------------------------------------------


class TenantOut(OutputModel):
    """The business the API key belongs to, with its booking policy."""

    id: str = Field(description="Tenant id.")
    slug: str = Field(description="Short unique name (used by the CLI).")
    name: str = Field(description="Business name the agent says.")
    address: str = Field(description="Street address the agent can give callers.")
    timezone: str = Field(description="IANA time zone of opening hours and bookings.")
    currency: str = Field(description="ISO 4217 currency of prices.")
    policies: str = Field(description="Free-text policies (cancellation, deposits, ...).")
    min_notice_min: int = Field(description="Earliest bookable slot, in minutes from now.")
    slot_step_min: int = Field(description="Granularity of offered start times, in minutes.")
    horizon_days: int = Field(description="How many days ahead callers can book.")
    created_at: datetime = Field(description="When the tenant was created.")


class TenantPatch(PatchModel):
    """Fields of the own tenant that can be changed (slug and id cannot)."""

    name: str | None = Field(None, min_length=1, max_length=200, description="Business name.")
    address: str | None = Field(None, max_length=2000, description="Street address.")
    timezone: TimeZoneName | None = None
    currency: Currency | None = None
    policies: str | None = Field(None, max_length=20000, description="Free-text policies.")
    min_notice_min: int | None = Field(
        None, ge=0, le=60 * 24 * 30, description="Minimum notice for a booking, in minutes."
    )
    slot_step_min: int | None = Field(
        None, ge=5, le=24 * 60, description="Step between offered start times, in minutes."
    )
    horizon_days: int | None = Field(
        None, ge=1, le=730, description="How many days ahead callers can book."
    )


# --- phone numbers ------------------------------------------------------------------------

_PIPELINE_DOC = "How calls to this number are served: cascade (STT+LLM+TTS) or a voice agent."


class NumberIn(InputModel):
    """A phone number to route to this tenant."""

    e164: E164
    pipeline: Pipeline = Field("cascade", description=_PIPELINE_DOC)
    voice: str = Field("", max_length=64, description="TTS voice id; empty for the default.")
    transfer_number: E164 | None = Field(
        None, description="E.164 number calls are transferred to when a human is asked for."
    )


class NumberPatch(PatchModel):
    """Changes to a number's routing (the number itself cannot change)."""

    nullable: ClassVar[frozenset[str]] = frozenset({"transfer_number"})
    pipeline: Pipeline | None = Field(None, description=_PIPELINE_DOC)
    voice: str | None = Field(None, max_length=64, description="TTS voice id.")
    transfer_number: E164 | None = Field(None, description="Transfer target; null removes it.")


class NumberOut(OutputModel):
    """A phone number of this tenant."""

    e164: str = Field(description="The number, E.164.")
    pipeline: str = Field(description=_PIPELINE_DOC)
    voice: str = Field(description="TTS voice id; empty for the default.")
    transfer_number: str | None = Field(description="Transfer target, E.164, or null.")


# --- knowledge ----------------------------------------------------------------------------


class KnowledgeIn(InputModel):
    """A question callers ask, and the business's answer."""

    question: str = Field(min_length=1, max_length=2000, description="The question.")
    answer: str = Field(min_length=1, max_length=10000, description="The answer the agent gives.")


class KnowledgePatch(PatchModel):
    """Changes to a knowledge item."""

    question: str | None = Field(None, min_length=1, max_length=2000, description="The question.")
    answer: str | None = Field(None, min_length=1, max_length=10000, description="The answer.")


class KnowledgeOut(OutputModel):
    """A knowledge (FAQ) item."""

    id: str = Field(description="Knowledge item id.")
    question: str = Field(description="The question.")
    answer: str = Field(description="The answer the agent gives.")
