"""The pure slot engine: hours, closures, busy time, buffer, lead time, DST (Europe/London)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tools.scheduling import spoken
from services.tools.scheduling.availability import (
    BusyTimes,
    Closure,
    Problem,
    ResourceCalendar,
    SlotRules,
    check_start,
    find_slots,
    slots_on,
)
from shared.tenancy.tool_specs import normalize_phone

LONDON = ZoneInfo("Europe/London")
WEEKDAYS_9_TO_5 = {d: [(time(9), time(17))] for d in range(5)}
MONDAY = date(2025, 1, 6)


def rules(**overrides: object) -> SlotRules:
    base: dict[str, object] = {
        "tz": LONDON,
        "business_hours": WEEKDAYS_9_TO_5,
        "now": datetime(2025, 1, 5, 12, 0, tzinfo=UTC),  # Sunday noon
        "duration": timedelta(minutes=30),
        "step": timedelta(minutes=30),
    }
    base.update(overrides)
    return SlotRules(**base)  # type: ignore[arg-type]


def walls(slots: list) -> list[str]:  # type: ignore[type-arg]
    return [s.local.strftime("%a %H:%M") for s in slots]


CHAIR = ResourceCalendar(id=1, name="Chair")


def test_spring_forward_skips_the_missing_hour_and_offsets_change() -> None:
    # Open all night on Sunday 30 March 2025: clocks go 01:00 GMT -> 02:00 BST.
    night = {6: [(time(0), time(4))], 5: [(time(9), time(12))], 0: [(time(9), time(12))]}
    r = rules(business_hours=night, now=datetime(2025, 3, 28, 12, tzinfo=UTC))
    sunday = slots_on(r, [CHAIR], date(2025, 3, 30))
    assert [s.local.time() for s in sunday] == [
        time(0, 0),
        time(0, 30),
        time(2, 0),
        time(2, 30),
        time(3, 0),
        time(3, 30),
    ]
    assert [s.start.strftime("%H:%M") for s in sunday] == [
        "00:00",
        "00:30",
        "01:00",
        "01:30",
        "02:00",
        "02:30",
    ]
    saturday = slots_on(r, [CHAIR], date(2025, 3, 29))[0]
    monday = slots_on(r, [CHAIR], date(2025, 3, 31))[0]
    assert saturday.start == datetime(2025, 3, 29, 9, tzinfo=UTC)  # GMT, +00:00
    assert monday.start == datetime(2025, 3, 31, 8, tzinfo=UTC)  # BST, +01:00
    missing = check_start(r, [CHAIR], datetime(2025, 3, 30, 1, 30))
    assert missing.problem is Problem.NONEXISTENT and missing.free == []


def test_fall_back_offers_each_wall_time_once_at_its_first_occurrence() -> None:
    night = {6: [(time(0), time(4))], 5: [(time(9), time(12))], 0: [(time(9), time(12))]}
    r = rules(business_hours=night, now=datetime(2025, 10, 24, 12, tzinfo=UTC))
    sunday = slots_on(r, [CHAIR], date(2025, 10, 26))
    assert [s.local.strftime("%H:%M") for s in sunday] == [
        "00:00",
        "00:30",
        "01:00",
        "01:30",
        "02:00",
        "02:30",
        "03:00",
        "03:30",
    ]
    # 01:00 and 01:30 happen twice; the first (BST) occurrence is used.
    assert [s.start.strftime("%H:%M") for s in sunday] == [
        "23:00",
        "23:30",
        "00:00",
        "00:30",
        "02:00",
        "02:30",
        "03:00",
        "03:30",
    ]
    assert len({s.start for s in sunday}) == len(sunday)
    saturday = slots_on(r, [CHAIR], date(2025, 10, 25))[0]
    monday = slots_on(r, [CHAIR], date(2025, 10, 27))[0]
    assert saturday.start == datetime(2025, 10, 25, 8, tzinfo=UTC)  # BST
    assert monday.start == datetime(2025, 10, 27, 9, tzinfo=UTC)  # GMT


def test_holiday_closure_has_no_slots_and_says_why() -> None:
    xmas = Closure(date(2025, 12, 25), date(2025, 12, 26), "Christmas")
    r = rules(closures=(xmas,), now=datetime(2025, 12, 20, 12, tzinfo=UTC))
    assert slots_on(r, [CHAIR], date(2025, 12, 25)) == []
    assert slots_on(r, [CHAIR], date(2025, 12, 26)) == []
    assert walls(slots_on(r, [CHAIR], date(2025, 12, 24)))[0] == "Wed 09:00"
    verdict = check_start(r, [CHAIR], datetime(2025, 12, 25, 10))
    assert verdict.problem is Problem.CLOSED
    assert verdict.closure is not None and verdict.closure.reason == "Christmas"
    after = find_slots(r, [CHAIR], date(2025, 12, 25), limit=1)
    assert walls(after) == ["Mon 09:00"]  # 27/28 Dec are a weekend
    assert after[0].local.date() == date(2025, 12, 29)


def test_two_staff_with_different_hours() -> None:
    alice = ResourceCalendar(id=1, name="Alice", hours={0: [(time(9), time(12))]})
    bob = ResourceCalendar(id=2, name="Bob", hours={0: [(time(13), time(20))]})  # narrowed to 17
    both = slots_on(rules(), [alice, bob], MONDAY)
    by_staff = {(s.local.strftime("%H:%M"), s.resource_name) for s in both}
    assert ("09:00", "Alice") in by_staff and ("11:30", "Alice") in by_staff
    assert ("13:00", "Bob") in by_staff and ("16:30", "Bob") in by_staff
    assert not any(s.local.time() >= time(12) and s.resource_name == "Alice" for s in both)
    assert not any(time(12) <= s.local.time() < time(13) for s in both)  # lunch: nobody
    assert not any(s.local.time() >= time(17) for s in both)  # business closes at 5
    only_alice = slots_on(rules(), [alice], MONDAY)
    assert walls(only_alice)[-1] == "Mon 11:30"  # 30 minutes must end by 12:00
    verdict = check_start(rules(), [alice, bob], datetime(2025, 1, 6, 14))
    assert [r.name for r in verdict.free] == ["Bob"]
    assert check_start(rules(), [alice], datetime(2025, 1, 6, 14)).problem is Problem.OUTSIDE_HOURS


def test_fully_booked_day_offers_the_next_day() -> None:
    monday_busy = (
        datetime(2025, 1, 6, 9, tzinfo=UTC),
        datetime(2025, 1, 6, 17, tzinfo=UTC),
    )
    chair = ResourceCalendar(id=1, name="Chair", busy=BusyTimes([monday_busy]))
    assert slots_on(rules(), [chair], MONDAY) == []
    found = find_slots(rules(), [chair], MONDAY, limit=3)
    assert found and all(s.local.date() > MONDAY for s in found)
    assert walls(found)[0] == "Tue 09:00"
    assert check_start(rules(), [chair], datetime(2025, 1, 6, 10)).problem is Problem.TAKEN


def test_buffer_blocks_time_before_and_after_a_booking() -> None:
    # Existing booking 10:00-10:30 with a 10 minute buffer: blocked until 10:40.
    booked = (datetime(2025, 1, 6, 10, tzinfo=UTC), datetime(2025, 1, 6, 10, 40, tzinfo=UTC))
    chair = ResourceCalendar(id=1, name="Chair", busy=BusyTimes([booked]))
    step = timedelta(minutes=10)
    with_buffer = rules(step=step, buffer=timedelta(minutes=10))
    starts = {s.local.strftime("%H:%M") for s in slots_on(with_buffer, [chair], MONDAY)}
    assert "09:20" in starts  # 09:20-09:50 + buffer to 10:00: fits exactly
    assert "09:30" not in starts  # its buffer would run into the booking
    assert "10:30" not in starts and "10:40" in starts
    without = {s.local.strftime("%H:%M") for s in slots_on(rules(step=step), [chair], MONDAY)}
    assert "09:30" in without  # the difference is the new service's buffer
    # The buffer may run past closing; the appointment itself may not.
    late = {s.local.strftime("%H:%M") for s in slots_on(with_buffer, [CHAIR], MONDAY)}
    assert "16:30" in late and "16:40" not in late


def test_lead_time_and_past() -> None:
    now = datetime(2025, 1, 6, 9, 5, tzinfo=UTC)  # Monday 09:05 GMT
    r = rules(now=now, min_notice=timedelta(minutes=60), step=timedelta(minutes=15))
    first = slots_on(r, [CHAIR], MONDAY)[0]
    assert first.local == datetime(2025, 1, 6, 10, 15)
    assert check_start(r, [CHAIR], datetime(2025, 1, 6, 9, 30)).problem is Problem.TOO_SOON
    assert check_start(r, [CHAIR], datetime(2025, 1, 6, 9, 0)).problem is Problem.PAST
    assert check_start(r, [CHAIR], datetime(2025, 1, 6, 10, 15)).free == [CHAIR]


def test_horizon_and_spread() -> None:
    r = rules(horizon_days=3)
    assert r.last_day == date(2025, 1, 8)
    assert slots_on(r, [CHAIR], date(2025, 1, 9)) == []
    verdict = check_start(r, [CHAIR], datetime(2025, 1, 9, 10))
    assert verdict.problem is Problem.BEYOND_HORIZON
    spread = find_slots(rules(), [CHAIR], MONDAY, limit=5)
    assert walls(spread) == ["Mon 09:00", "Mon 12:00", "Tue 09:00", "Tue 12:00", "Wed 09:00"]
    one_day = find_slots(rules(), [CHAIR], MONDAY, MONDAY, limit=3)
    assert walls(one_day) == ["Mon 09:00", "Mon 10:00", "Mon 11:00"]


def test_spoken_forms() -> None:
    assert spoken.moment(datetime(2024, 12, 3, 14, 30)) == "Tuesday 3 December at 2:30pm"
    assert spoken.moment(datetime(2024, 12, 3, 9, 0)) == "Tuesday 3 December at 9am"
    assert spoken.clock(time(12, 0)) == "12pm" and spoken.clock(time(0, 15)) == "12:15am"
    assert spoken.price(2500, "GBP") == "£25" and spoken.price(750, "GBP") == "£7.50"
    assert spoken.duration(75) == "1 hour 15 minutes" and spoken.duration(30) == "30 minutes"
    assert spoken.iso_local(datetime(2024, 12, 3, 14, 30, 59)) == "2024-12-03T14:30"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+44 7700 900123", "+447700900123"),
        ("07700 900123", "+447700900123"),
        ("020 7946 0018", "+442079460018"),
        ("+44 (0)20 7946 0018", "+442079460018"),
        ("0044 7700 900123", "+447700900123"),
        ("+1 (415) 555-0100", "+14155550100"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    "junk", ["", "hello", "12345", "+0123456789", "07700", "+44 7700 9001234567"]
)
def test_junk_phone_numbers_are_rejected(junk: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalize_phone(junk)
