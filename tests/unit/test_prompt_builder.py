"""The system prompt in words: hours, staff, tables, closures, policies, templates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from shared.tenancy.prompting import (
    build_system_prompt,
    clock,
    closure_words,
    duration_words,
    fill,
    hours_in_words,
    places_in_words,
    staff_in_words,
)
from shared.tenancy.tenant_directory import (
    ClosureInfo,
    ServiceInfo,
    StaffInfo,
    TenantProfile,
    WeeklyHours,
)

# 13:30 UTC on Wednesday 1 July 2026 is 2:30pm British Summer Time.
NOW = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
NINE_TO_HALF_FIVE = [(time(9), time(17, 30))]
SHOP: WeeklyHours = {d: NINE_TO_HALF_FIVE for d in range(5)} | {5: [(time(9), time(13))]}
SPLIT = [(time(9), time(13)), (time(14), time(17, 30))]


def barbers(**changes: Any) -> TenantProfile:
    base: dict[str, Any] = {
        "tenant_id": "t1",
        "name": "Dave's Barbershop",
        "address": "123 High Street",
        "timezone": "Europe/London",
        "number": "+441632960001",
        "pipeline": "cascade",
        "voice": "aura",
        "greeting": "Hi",
        "custom_prompt": None,
        "language": "en",
        "services": [
            ServiceInfo(name="Beard Trim", duration_min=15, price_minor=1500, currency="GBP"),
            ServiceInfo(
                name="Men's Haircut",
                duration_min=30,
                price_minor=2500,
                currency="GBP",
                description="Wash, cut and style",
            ),
        ],
        "faq": [("Do you take walk-ins?", "Yes, when a chair is free.")],
        "hours": SHOP,
        "staff": [
            StaffInfo(
                id=1,
                name="Dave",
                services=["Beard Trim", "Men's Haircut"],
                hours={d: SPLIT for d in range(5)},
            ),
            StaffInfo(id=2, name="Sam", services=["Men's Haircut"]),
        ],
        "closures": [
            ClosureInfo(
                starts_on=date(2026, 12, 24), ends_on=date(2026, 12, 28), reason="Christmas"
            )
        ],
        "policies": ["Please give 24 hours' notice to cancel."],
        "min_notice_min": 60,
        "horizon_days": 60,
    }
    base.update(changes)
    return TenantProfile(**base)


@pytest.mark.parametrize(
    ("hours", "words"),
    [
        (SHOP, "Monday to Friday 9am to 5:30pm, Saturday 9am to 1pm, closed Sunday"),
        (
            {d: SPLIT for d in range(6)},
            "Monday to Saturday 9am to 1pm and 2pm to 5:30pm, closed Sunday",
        ),
        (
            {0: NINE_TO_HALF_FIVE, 1: NINE_TO_HALF_FIVE, 3: NINE_TO_HALF_FIVE},
            "Monday and Tuesday 9am to 5:30pm, closed Wednesday, Thursday 9am to 5:30pm, "
            "closed Friday to Sunday",
        ),
        (
            {6: [(time(0), time(12)), (time(12, 15), time(23, 59))]},
            "closed Monday to Saturday, Sunday 12am to 12pm and 12:15pm to 11:59pm",
        ),
        ({}, "closed Monday to Sunday"),
    ],
)
def test_hours_in_words(hours: WeeklyHours, words: str) -> None:
    assert hours_in_words(hours) == words


@pytest.mark.parametrize(
    ("t", "words"),
    [(time(9), "9am"), (time(17, 30), "5:30pm"), (time(12), "12pm"), (time(0, 5), "12:05am")],
)
def test_clock(t: time, words: str) -> None:
    assert clock(t) == words


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        (1, "1 minute"),
        (30, "30 minutes"),
        (60, "1 hour"),
        (90, "1 hour 30 minutes"),
        (120, "2 hours"),
    ],
)
def test_duration_words(minutes: int, words: str) -> None:
    assert duration_words(minutes) == words


def test_default_prompt_has_rules_facts_and_local_time() -> None:
    lines = build_system_prompt(barbers(), now=NOW).split("\n")
    assert lines[0].startswith(
        "You are the receptionist answering the phone for Dave's Barbershop."
    )
    assert "short, plain sentences" in lines[0]
    assert any("call check_availability" in line for line in lines)
    assert any("confirm the caller's name, phone number" in line for line in lines)
    assert any("never invent prices, times, staff or bookings" in line for line in lines)
    assert "Address: 123 High Street." in lines
    assert (
        "Services: Beard Trim, £15, 15 minutes; "
        "Men's Haircut, £25, 30 minutes (Wash, cut and style)."
    ) in lines
    assert (
        "Opening hours: Monday to Friday 9am to 5:30pm, Saturday 9am to 1pm, closed Sunday."
        in lines
    )
    assert (
        "Staff: Dave does Beard Trim and Men's Haircut, working Monday to Friday 9am to 1pm "
        "and 2pm to 5:30pm. Sam does Men's Haircut."
    ) in lines
    assert (
        "Upcoming closures: closed Thursday 24 December to Monday 28 December 2026 (Christmas)."
    ) in lines
    assert (
        "Policies: Please give 24 hours' notice to cancel. Bookings can be made up to 60 days "
        "ahead and at least 1 hour in advance."
    ) in lines
    assert "Q: Do you take walk-ins? A: Yes, when a chair is free." in lines
    assert lines[-1] == "Today is Wednesday 1 July 2026 and the time is 2:30pm (Europe/London)."
    assert not any("transfer" in line for line in lines)
    assert len("\n".join(lines)) < 2000


def test_transfer_rule_only_with_a_transfer_number() -> None:
    prompt = build_system_prompt(barbers(transfer_number="+441632960099"), now=NOW)
    assert "If the caller asks for a person, offer to transfer the call." in prompt.split("\n")


def test_empty_sections_are_left_out() -> None:
    bare = barbers(address="", services=[], faq=[], hours={}, staff=[], closures=[], policies=[])
    lines = build_system_prompt(bare, now=NOW).split("\n")
    assert not any(
        line.startswith(label)
        for line in lines
        for label in ("Address", "Services", "Opening hours", "Staff", "Upcoming", "Policies")
    )
    assert lines[-1].startswith("Today is Wednesday 1 July 2026")


def test_tables_counted_by_size() -> None:
    tables = [
        StaffInfo(id=i, name=f"Table {i}", kind="table", capacity=c)
        for i, c in enumerate([2, 4, 2, 6, 4, 4], start=1)
    ]
    assert places_in_words(tables) == "2 tables for 2, 3 tables for 4 and 1 table for 6"
    assert staff_in_words(tables) == ""
    prompt = build_system_prompt(barbers(staff=tables), now=NOW)
    assert "Tables and rooms: 2 tables for 2, 3 tables for 4 and 1 table for 6." in prompt


def test_closure_words() -> None:
    one_day = ClosureInfo(starts_on=date(2027, 1, 1), ends_on=date(2027, 1, 1), reason="New Year")
    assert closure_words(one_day) == "closed Friday 1 January 2027 (New Year)"
    across_years = ClosureInfo(starts_on=date(2026, 12, 31), ends_on=date(2027, 1, 2))
    assert (
        closure_words(across_years) == "closed Thursday 31 December 2026 to Saturday 2 January 2027"
    )
    away = ClosureInfo(starts_on=date(2026, 8, 10), ends_on=date(2026, 8, 14), staff="Sam")
    assert closure_words(away) == "Sam is away Monday 10 August to Friday 14 August 2026"


def test_prompt_template_is_filled_and_keeps_the_phone_rules() -> None:
    template = (
        "You are Rosa at {business_name}, {address} We offer: {services} Hours: {hours} "
        "Team: {staff} Closures: {closures} Rules: {policies} FAQ: {faq} "
        'It is {today} at {now} in {timezone}. Keep {unknown} and {0} and {"json": 1}.'
    )
    prompt = build_system_prompt(barbers(prompt_template=template), now=NOW)
    first, *rules = prompt.split("\n")
    assert first == (
        "You are Rosa at Dave's Barbershop, 123 High Street. We offer: Beard Trim, £15, "
        "15 minutes; Men's Haircut, £25, 30 minutes (Wash, cut and style). Hours: Monday to "
        "Friday 9am to 5:30pm, Saturday 9am to 1pm, closed Sunday. Team: Dave does Beard Trim "
        "and Men's Haircut, working Monday to Friday 9am to 1pm and 2pm to 5:30pm. Sam does "
        "Men's Haircut. Closures: closed Thursday 24 December to Monday 28 December 2026 "
        "(Christmas). Rules: Please give 24 hours' notice to cancel. Bookings can be made up to "
        "60 days ahead and at least 1 hour in advance. FAQ: Q: Do you take walk-ins? A: Yes, "
        "when a chair is free. It is Wednesday 1 July 2026 at 2:30pm in Europe/London. "
        'Keep {unknown} and {0} and {"json": 1}.'
    )
    assert any("call check_availability" in rule for rule in rules)
    assert not any(rule.startswith("Today is") for rule in rules)  # template has the time


def test_prompt_template_without_time_gets_the_clock_line() -> None:
    prompt = build_system_prompt(barbers(prompt_template="Be {business_name}."), now=NOW)
    lines = prompt.split("\n")
    assert lines[0] == "Be Dave's Barbershop."
    assert lines[-1] == "Today is Wednesday 1 July 2026 and the time is 2:30pm (Europe/London)."


def test_custom_prompt_is_used_verbatim_with_variables() -> None:
    custom = "{business_name} ({timezone}) {today} {now}. Say {mystery}. {hours}"
    prompt = build_system_prompt(barbers(custom_prompt=custom, prompt_template="ignored"), now=NOW)
    assert prompt == (
        "Dave's Barbershop (Europe/London) Wednesday 1 July 2026 2:30pm. Say {mystery}. "
        "Monday to Friday 9am to 5:30pm, Saturday 9am to 1pm, closed Sunday."
    )


def test_fill_leaves_unknown_and_malformed_braces() -> None:
    assert fill("{a} {b} {a.b} {{a}} {", {"a": "1"}) == "1 {b} {a.b} {1} {"
