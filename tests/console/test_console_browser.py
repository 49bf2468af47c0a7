"""The console in a real headless Chromium against the whole running platform: sign in with a
tenant key, watch a simulated call appear under live calls with its transcript arriving while
it runs, see it leave when it ends, open it (recording duration, one waterfall row per turn),
never see another tenant's call, and find the booking it made on the bookings page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import func, select

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Turn
from shared.tenancy import api_keys
from shared.tenancy.tenant_apply import apply, load_spec
from sim.twilio_call_model import CallScript
from sim.twilio_caller import place_call
from tests.conftest import ROOT, Platform
from tests.console.browser import chromium, screenshot_path
from tests.e2e.test_booking_calls import llm, next_open_weekday, policy  # noqa: F401 (fixture)
from tests.e2e.test_call_end_to_end import caller_options, wait_for_record

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")
WAIT_MS = 60_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SEEN_SIDS = """() => {
  window.__seen = new Set();
  const note = () => document.querySelectorAll('[data-call-sid]')
    .forEach(el => window.__seen.add(el.dataset.callSid));
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true});
  note();
}"""


@pytest_asyncio.fixture
async def tenants(platform: Platform) -> AsyncIterator[tuple[str, str]]:
    """(an API key of Dave's Barbershop, the phone number of another tenant)."""
    spec = load_spec(ROOT / "deploy" / "tenants" / "daves-barbershop.yaml")
    other_number = "+44163296" + str(uuid.uuid4().int % 10**4).zfill(4)
    other = spec.model_copy(
        update={
            "slug": "other-" + uuid.uuid4().hex[:8],
            "name": "Other Barbers",
            "numbers": [spec.numbers[0].model_copy(update={"e164": other_number})],
            "calendars": [],
        }
    )
    engine = make_engine(platform.infra.database_url)
    async with make_sessions(engine)() as session:
        await apply(session, other)
        key = await api_keys.create_for_tenant(session, "daves-barbershop", "console-browser")
    await engine.dispose()
    yield key, other_number


async def _turns(platform: Platform, call_sid: str) -> int:
    engine = make_engine(platform.infra.database_url)
    async with make_sessions(engine)() as session:
        count = await session.scalar(select(func.count()).where(Turn.call_sid == call_sid))
    await engine.dispose()
    return int(count or 0)


async def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    path = screenshot_path(name)
    if path is not None:
        await page.screenshot(path=path, full_page=full_page)


async def test_console_follows_a_call_from_live_to_booking(
    platform: Platform,
    llm: httpx.Client,  # noqa: F811
    tenants: tuple[str, str],
) -> None:
    dave_key, other_number = tenants
    day = next_open_weekday(datetime.now(LONDON).date())
    start = datetime.combine(day, time(16, 30), LONDON)  # a slot no other test books
    rules = policy(
        {
            "match": "book",
            "tool_call": {
                "name": "book_appointment",
                "arguments": {
                    "customer_name": "Browser Tester",
                    "phone": "+447700900123",
                    "service": "Men's Haircut",
                    "start": start.strftime("%Y-%m-%dT%H:%M"),
                    "staff": "Dave",
                },
            },
        },
        {"book_appointment": "You're booked in with Dave. See you then!"},
    )
    rules["rules"].insert(
        0, {"match": "how much", "reply": "A men's haircut is twenty five pounds."}
    )
    llm.post("/sim/policy", json=rules).raise_for_status()
    dave = caller_options(platform)
    other = caller_options(platform).model_copy(update={"to_number": other_number})
    script = CallScript(
        lines=[
            "Hello there, how much is a haircut?",
            "I'd like to book a haircut with Dave",
            "Great, thanks, bye.",
        ]
    )

    async with chromium() as browser:
        context = await browser.new_context(base_url=platform.gateway, viewport=DESKTOP)
        page = await context.new_page()
        # --- sign in with the tenant key -----------------------------------------------------
        await page.goto("/console/live")
        await expect(page).to_have_url(f"{platform.gateway}/console/sign-in")
        await _shot(page, "sign-in")
        await page.get_by_label("API key").fill(dave_key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{platform.gateway}/console")
        # --- live calls: the call appears, its transcript arrives while it runs -------------
        await page.goto("/console/live")
        await page.evaluate(SEEN_SIDS)
        await expect(page.get_by_test_id("no-live-calls")).to_be_visible(timeout=WAIT_MS)
        dave_call = asyncio.create_task(place_call(dave, script))
        other_call = asyncio.create_task(place_call(other, CallScript(lines=["Hi, bye."])))
        card = page.locator(f'li.live-call[data-call-sid="{dave.call_sid}"]')
        await expect(card).to_be_visible(timeout=WAIT_MS)
        lines = card.locator(".live-transcript li")
        await expect(lines.first).to_be_visible(timeout=WAIT_MS)
        first_count = await lines.count()
        await expect(card.locator(".live-transcript li.caller").first).to_be_visible(
            timeout=WAIT_MS
        )
        await expect(lines).not_to_have_count(first_count, timeout=WAIT_MS)
        assert not dave_call.done(), "the transcript must arrive while the call is running"
        await _shot(page, "live-calls")
        # --- it leaves the live list when it ends --------------------------------------------
        result, other_result = await asyncio.gather(dave_call, other_call)
        assert result.error is None and other_result.error is None, (
            result.error,
            other_result.error,
        )
        await expect(card).to_have_count(0, timeout=WAIT_MS)
        seen = set(await page.evaluate("() => [...window.__seen]"))
        assert dave.call_sid in seen and other.call_sid not in seen
        await wait_for_record(platform.infra.database_url, dave.call_sid)
        await wait_for_record(platform.infra.database_url, other.call_sid)
        # --- the calls list never shows the other tenant's call -----------------------------
        await page.goto("/console/calls")
        await expect(page.locator(f'tr[data-call-sid="{dave.call_sid}"]')).to_be_visible()
        await expect(page.locator(f'tr[data-call-sid="{other.call_sid}"]')).to_have_count(0)
        await _shot(page, "calls")
        missing = await page.goto(f"/console/calls/{other.call_sid}")
        assert missing is not None and missing.status == 404
        # --- the finished call: recording as long as the call, one waterfall row per turn --
        await page.goto(f"/console/calls/{dave.call_sid}")
        audio = page.locator("audio#recording")
        await expect(audio).to_have_count(1)
        await page.wait_for_function(
            "() => document.getElementById('recording').readyState >= 1", timeout=WAIT_MS
        )
        duration = await audio.evaluate("a => a.duration")
        call_s = float(
            await page.get_by_test_id("call-duration").get_attribute("data-seconds") or 0
        )
        assert call_s > 0 and abs(duration - call_s) <= 0.5, (duration, call_s)
        turns = await _turns(platform, dave.call_sid)
        assert turns >= 3
        await expect(page.locator("table.waterfall tr.wf-row")).to_have_count(turns)
        await _shot(page, "call-detail")
        # --- the bookings page shows the booking made during the call -----------------------
        await page.goto(f"/console/bookings?day={day.isoformat()}&view=week")
        booking = page.locator(".booking", has_text="Browser Tester")
        await expect(booking).to_be_visible()
        await expect(booking).to_contain_text("16:30")
        await expect(booking.locator(f'a[href="/console/calls/{dave.call_sid}"]')).to_be_visible()
        await _shot(page, "bookings")
        for path, name in [
            ("/console", "overview"),
            ("/console/business", "business"),
            ("/docs", "api-docs"),
        ]:
            await page.goto(path)
            await page.wait_for_load_state("networkidle")
            await _shot(page, name, full_page=name != "api-docs")
        # --- at a phone's width, keyboard first ---------------------------------------------
        await page.set_viewport_size(PHONE)
        await page.goto(f"/console/calls/{dave.call_sid}")
        await page.keyboard.press("Tab")
        await expect(page.locator("a.skip")).to_be_focused()
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways at a phone's width: {width}px"
        await _shot(page, "call-detail-phone")
        await context.close()
