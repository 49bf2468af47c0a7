"""Service price text, and the prompt's local date and time per tenant time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.tenancy.prompting import build_system_prompt, clock, date_words
from shared.tenancy.tenant_directory import ServiceInfo, TenantProfile

# 23:30 UTC on Tuesday 30 June 2026 is already Wednesday 1 July in Tokyo, 00:30 BST in London.
NOW = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)


def profile(**changes: Any) -> TenantProfile:
    base: dict[str, Any] = {
        "tenant_id": "acme",
        "name": "Acme Barbers",
        "address": "1 High Street, London",
        "timezone": "Europe/London",
        "number": "+442000000000",
        "pipeline": "cascade",
        "voice": "aura",
        "greeting": "Hi",
        "custom_prompt": None,
        "language": "en",
        "services": [
            ServiceInfo(name="Haircut", duration_min=30, price_minor=2500, currency="GBP"),
            ServiceInfo(name="Beard trim", duration_min=15, price_minor=750, currency="GBP"),
        ],
        "faq": [("Do you take cards?", "Yes, all major cards.")],
    }
    base.update(changes)
    return TenantProfile(**base)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (2500, "GBP", "£25"),
        (750, "GBP", "£7.50"),
        (705, "GBP", "£7.05"),
        (0, "GBP", "£0"),
        (1999, "USD", "$19.99"),
        (100000, "EUR", "€1000"),
        (1234, "JPY", "JPY 12.34"),
    ],
)
def test_price_text(minor: int, currency: str, text: str) -> None:
    service = ServiceInfo(name="x", duration_min=10, price_minor=minor, currency=currency)
    assert service.price_text() == text


def test_prompt_ends_with_local_date_and_time() -> None:
    prompt = build_system_prompt(profile(), now=NOW)
    assert prompt.split("\n")[-1] == (
        "Today is Wednesday 1 July 2026 and the time is 12:30am (Europe/London)."
    )


def test_prompt_date_uses_tenant_time_zone() -> None:
    tokyo = build_system_prompt(profile(timezone="Asia/Tokyo"), now=NOW)
    assert tokyo.endswith("Today is Wednesday 1 July 2026 and the time is 8:30am (Asia/Tokyo).")
    ny = build_system_prompt(profile(timezone="America/New_York"), now=NOW)
    assert ny.endswith("Today is Tuesday 30 June 2026 and the time is 7:30pm (America/New_York).")


def test_prompt_defaults_to_current_time() -> None:
    before = datetime.now(UTC)
    prompt = build_system_prompt(profile(timezone="UTC"))
    after = datetime.now(UTC)
    stamps = {
        f"Today is {date_words(t.date())} and the time is {clock(t.time())} (UTC)."
        for t in (before, after)
    }
    assert prompt.split("\n")[-1] in stamps


def test_custom_prompt_old_variable_names_still_work() -> None:
    custom = "You answer for {name} at {address} Today is {today}, {time} {timezone}."
    assert build_system_prompt(profile(custom_prompt=custom), now=NOW) == (
        "You answer for Acme Barbers at 1 High Street, London. "
        "Today is Wednesday 1 July 2026, 12:30am Europe/London."
    )


def test_custom_prompt_without_variables_unchanged() -> None:
    assert build_system_prompt(profile(custom_prompt="Plain."), now=NOW) == "Plain."
