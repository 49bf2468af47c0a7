"""The price table: what one unit of each provider's metric costs, in minor units of a currency.

Configured as JSON in ``PRICE_TABLE_JSON``::

    {"currency": "USD",
     "prices": [{"provider": "deepgram", "metric": "stt_seconds", "unit_price_minor": "0.0129"},
                {"provider": "*", "metric": "completion_tokens", "unit_price_minor": "0.00006"}]}

A price for ``"*"`` applies to every provider without its own price for that metric.
``EXAMPLE_PRICES`` (used when the setting is empty) are placeholders showing the shape of the
table; they are not claims about any provider's real prices. Put your contract prices in.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, Field, ValidationError, field_validator

AMOUNT_EXP = Decimal("0.00000001")  # matches the scale of the amount columns (8)
WILDCARD = "*"

METRIC_UNITS: dict[str, str] = {
    "stt_seconds": "second of caller audio sent to STT",
    "prompt_tokens": "uncached prompt token",
    "cached_prompt_tokens": "cached prompt token",
    "completion_tokens": "completion token",
    "wasted_prompt_tokens": "prompt token of a discarded preemptive reply",
    "wasted_completion_tokens": "completion token of a discarded preemptive reply",
    "tts_characters": "character sent to TTS",
    "telephony_minutes": "started minute of the phone call",
}
"""Metrics FrontDesk meters, and their unit."""


class PriceTableError(ValueError):
    """The configured price table is not valid."""


class Price(BaseModel):
    """The unit price of one metric of one provider."""

    provider: str = Field(min_length=1, description="Provider name as metered, or '*'.")
    metric: str = Field(min_length=1, description="Metric name, e.g. stt_seconds.")
    unit_price_minor: Decimal = Field(ge=0, description="Minor units of currency per unit.")


class PriceTable(BaseModel):
    """Unit prices in one currency."""

    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code.")
    prices: list[Price] = Field(default_factory=list)

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def unit_price(self, provider: str, metric: str) -> Decimal | None:
        """The price of one unit, the provider's own before the wildcard; None if unpriced."""
        fallback: Decimal | None = None
        for price in self.prices:
            if price.metric != metric:
                continue
            if price.provider == provider:
                return price.unit_price_minor
            if price.provider == WILDCARD and fallback is None:
                fallback = price.unit_price_minor
        return fallback


# --- issue 15: self-hosted speech is priced at its compute only --------------------------------
LOCAL_SPEECH = "local"
"""Provider name of the self-hosted speech service (services/speech): usage of a tenant with
`speech: local`, or of a deployment pointed at it (`STT_PROVIDER=local`, `TTS_PROVIDER=local`)."""
CPU_SECOND_MINOR = Decimal("0.00111")
"""Placeholder price of one CPU-second in US cents (a cloud vCPU at about $0.04 an hour)."""
LOCAL_STT_CPU_PER_AUDIO_SECOND = Decimal("0.25")
"""Speech-service CPU-seconds per second of caller audio, measured with `frontdesk bench
--speech local`: 0.20-0.56 for its dense caller with interims on, so ~0.24 for a typical
caller who talks 0.43 as much (docs/self-hosted-speech.md, "Cost per call"; rounded up)."""
LOCAL_STT_SECOND = (CPU_SECOND_MINOR * LOCAL_STT_CPU_PER_AUDIO_SECOND).normalize()
"""A second of caller audio on the self-hosted STT: its compute, no vendor fee."""
LOCAL_TTS_CPU_PER_CHARACTER = Decimal("0.005")
"""Speech-service CPU-seconds per character of text synthesised by Piper, measured with
`python -m services.speech.tts.speed` (4.2 ms; docs/self-hosted-speech.md; rounded up)."""
LOCAL_TTS_CHARACTER = (CPU_SECOND_MINOR * LOCAL_TTS_CPU_PER_CHARACTER).normalize()
"""A character sent to the self-hosted TTS: its compute, no vendor fee."""
COMPUTE_ONLY_PROVIDERS = frozenset({LOCAL_SPEECH})


def price_basis(provider: str) -> str:
    """What a provider's price covers: 'compute' (self-hosted: the CPU it uses, no vendor
    fee) or 'vendor' (a provider's own per-unit price)."""
    return "compute" if provider in COMPUTE_ONLY_PROVIDERS else "vendor"


EXAMPLE_PRICES = PriceTable(
    currency="USD",
    prices=[
        Price(provider="deepgram", metric="stt_seconds", unit_price_minor=Decimal("0.0129")),
        Price(provider="deepgram", metric="tts_characters", unit_price_minor=Decimal("0.003")),
        Price(provider=LOCAL_SPEECH, metric="stt_seconds", unit_price_minor=LOCAL_STT_SECOND),
        Price(
            provider=LOCAL_SPEECH, metric="tts_characters", unit_price_minor=LOCAL_TTS_CHARACTER
        ),
        Price(provider="elevenlabs", metric="tts_characters", unit_price_minor=Decimal("0.018")),
        Price(provider=WILDCARD, metric="prompt_tokens", unit_price_minor=Decimal("0.000015")),
        Price(
            provider=WILDCARD, metric="cached_prompt_tokens", unit_price_minor=Decimal("0.0000075")
        ),
        Price(provider=WILDCARD, metric="completion_tokens", unit_price_minor=Decimal("0.00006")),
        Price(provider="twilio", metric="telephony_minutes", unit_price_minor=Decimal("0.85")),
        Price(provider="deepgram-agent", metric="agent_seconds", unit_price_minor=Decimal("0.125")),
        Price(
            provider="elevenlabs-agent", metric="agent_seconds", unit_price_minor=Decimal("0.167")
        ),
    ],
)


# --- issue 13: prices per currency, so a tenant is charged in its own currency ----------------
EXAMPLE_GBP_RATE = Decimal("0.8")
"""Placeholder conversion of the example USD prices into the example GBP table."""
EXAMPLE_PRICES_GBP = PriceTable(
    currency="GBP",
    prices=[
        Price(
            provider=p.provider,
            metric=p.metric,
            unit_price_minor=(p.unit_price_minor * EXAMPLE_GBP_RATE).normalize(),
        )
        for p in EXAMPLE_PRICES.prices
    ],
)


class PriceBook(BaseModel):
    """Price tables in several currencies; a call is priced in its tenant's currency.

    ``PRICE_TABLE_JSON`` may hold one table (as before) or a list of tables, one per currency.
    A tenant whose currency has no table is priced with the first table, and its cost says that
    table's currency (it is never relabelled).
    """

    tables: list[PriceTable] = Field(min_length=1)

    def for_currency(self, currency: str | None) -> PriceTable:
        """The table in `currency`, else the first table."""
        for table in self.tables:
            if table.currency == (currency or "").upper():
                return table
        return self.tables[0]


EXAMPLE_PRICE_BOOK = PriceBook(tables=[EXAMPLE_PRICES, EXAMPLE_PRICES_GBP])


def load_price_book(raw_json: str) -> PriceBook:
    """The price book from settings JSON (one table or a list); examples when empty."""
    if not raw_json.strip():
        return EXAMPLE_PRICE_BOOK
    if raw_json.lstrip().startswith("["):
        try:
            return PriceBook.model_validate({"tables": json.loads(raw_json)})
        except (ValidationError, ValueError) as exc:
            raise PriceTableError(f"PRICE_TABLE_JSON is not a list of price tables: {exc}") from exc
    return PriceBook(tables=[load_price_table(raw_json)])


def load_price_table(raw_json: str) -> PriceTable:
    """The table from settings JSON; the example table when `raw_json` is empty."""
    if not raw_json.strip():
        return EXAMPLE_PRICES
    try:
        return PriceTable.model_validate_json(raw_json)
    except ValidationError as exc:
        raise PriceTableError(f"PRICE_TABLE_JSON is not a valid price table: {exc}") from exc


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """quantity x unit price, rounded half-even to the stored scale of amounts."""
    return (quantity * unit_price).quantize(AMOUNT_EXP, rounding=ROUND_HALF_EVEN)
