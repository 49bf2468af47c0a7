"""Per-tenant conversation knobs: YAML -> Postgres -> tenant profile -> call.started, with the
platform defaults filling what a tenant leaves unset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contract import events as ev
from shared.contract.conversation_knobs import ConversationKnobs, effective
from shared.db.engine import make_engine, make_sessions
from shared.runtime.settings import Settings
from shared.tenancy.tenant_apply import apply, load_spec
from shared.tenancy.tenant_directory import find_by_number
from shared.tenancy.tenant_spec import TenantSpec
from tests.conftest import Infra

DAVES = Path(__file__).resolve().parents[2] / "deploy" / "tenants" / "daves-barbershop.yaml"


@pytest_asyncio.fixture
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(infra.database_url, pool_size=2)
    yield make_sessions(engine)
    await engine.dispose()


def variant(**conversation: object) -> TenantSpec:
    """Dave's file under its own slug and number, with other conversation knobs."""
    data = load_spec(DAVES).model_dump()
    data["slug"], data["numbers"][0]["e164"] = "knobs-barbershop", "+441632960777"
    data["assistant"]["conversation"] = conversation
    return TenantSpec.model_validate(data)


async def test_knobs_reach_the_profile_and_the_call_started_event(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await apply(session, variant(dtmf_transfer_digit="9", silence_reprompt_s=4.5))
    async with sessions() as session:
        profile = await find_by_number(session, "+441632960777")
    assert profile is not None
    assert profile.conversation == ConversationKnobs(
        dtmf_transfer_digit="9", silence_reprompt_s=4.5
    )
    started = ev.CallStarted(
        call_sid="CA1", from_number="+1", to_number="+2", conversation=profile.conversation
    )
    decoded = ev.decode(ev.encode(started))
    assert isinstance(decoded, ev.CallStarted) and decoded.conversation == profile.conversation
    knobs = effective(decoded.conversation, Settings(barge_in_min_words=3))
    assert (knobs.dtmf_transfer_digit, knobs.silence_reprompt_s) == ("9", 4.5)
    assert knobs.barge_in_min_words == 3  # unset by the tenant: the platform's value


async def test_reapplying_without_knobs_returns_to_platform_defaults(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await apply(session, variant(barge_in_min_words=4))
    async with sessions() as session:
        await apply(session, variant())
    async with sessions() as session:
        profile = await find_by_number(session, "+441632960777")
    assert profile is not None and profile.conversation == ConversationKnobs()


@pytest.mark.parametrize(
    "bad",
    [
        {"dtmf_transfer_digit": "x"},
        {"barge_in_min_words": 0},
        {"silence_hangup_s": -1},
        {"unknown_knob": 1},
    ],
)
def test_bad_knobs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        variant(**bad)


def test_old_call_started_entries_without_knobs_still_decode() -> None:
    legacy = ev.CallStarted(call_sid="CA1", from_number="+1", to_number="+2").model_dump()
    legacy.pop("conversation")
    decoded = ev.CallStarted.model_validate(legacy)
    assert decoded.conversation == ConversationKnobs()
