"""System prompt built from a tenant profile, and service price text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.prompting import build_system_prompt
from shared.tenant_directory import ServiceInfo, TenantProfile

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


def test_prompt_contains_business_facts() -> None:
    prompt = build_system_prompt(profile(), now=NOW)
    lines = prompt.split("\n")
    assert lines[0].startswith("You are the receptionist answering the phone for Acme Barbers.")
    assert "Address: 1 High Street, London." in lines
    assert "Services: Haircut £25 (30 min); Beard trim £7.50 (15 min)." in lines
    assert "Q: Do you take cards? A: Yes, all major cards." in lines
    assert lines[-1] == "It is now Wednesday 01 July 2026, 00:30 (Europe/London)."


def test_prompt_date_uses_tenant_time_zone() -> None:
    tokyo = build_system_prompt(profile(timezone="Asia/Tokyo"), now=NOW)
    assert tokyo.endswith("It is now Wednesday 01 July 2026, 08:30 (Asia/Tokyo).")
    ny = build_system_prompt(profile(timezone="America/New_York"), now=NOW)
    assert ny.endswith("It is now Tuesday 30 June 2026, 19:30 (America/New_York).")


def test_prompt_omits_empty_sections() -> None:
    prompt = build_system_prompt(profile(address="", services=[], faq=[]), now=NOW)
    assert "Address:" not in prompt
    assert "Services:" not in prompt
    assert "Q:" not in prompt
    assert len(prompt.split("\n")) == 2


def test_prompt_defaults_to_current_time() -> None:
    before = datetime.now(UTC)
    prompt = build_system_prompt(profile(timezone="UTC"))
    after = datetime.now(UTC)
    stamps = {f"It is now {t.strftime('%A %d %B %Y, %H:%M')} (UTC)." for t in (before, after)}
    assert prompt.split("\n")[-1] in stamps


def test_custom_prompt_variables() -> None:
    custom = (
        "You answer for {name} at {address}. Today is {today}, {time} {timezone}. "
        "Say {unknown} and {also_unknown} verbatim."
    )
    prompt = build_system_prompt(profile(custom_prompt=custom), now=NOW)
    assert prompt == (
        "You answer for Acme Barbers at 1 High Street, London. "
        "Today is Wednesday 01 July 2026, 00:30 Europe/London. "
        "Say {unknown} and {also_unknown} verbatim."
    )


def test_custom_prompt_replaces_default_rules() -> None:
    prompt = build_system_prompt(profile(custom_prompt="Just {name}."), now=NOW)
    assert prompt == "Just Acme Barbers."


def test_custom_prompt_without_variables_unchanged() -> None:
    assert build_system_prompt(profile(custom_prompt="Plain."), now=NOW) == "Plain."
