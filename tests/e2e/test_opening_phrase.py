"""A reply's opening phrase goes to TTS before its first sentence ends (issue 17): through the
real platform, per tenant (`conversation.first_phrase_words`, else REPLY_FIRST_PHRASE_WORDS)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Platform
from tests.e2e.test_conversation_timeline import PRICE_ANSWER, PRICES
from tests.e2e.test_filler import call, of_turn, sessions, stored, tenant_knobs

__all__ = ["sessions"]  # a fixture

pytestmark = pytest.mark.e2e


def reply_chunks(events: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [str(p["text"]) for t, p in of_turn(events, 1) if t == "agent.text"]


async def test_a_reply_opens_with_a_phrase_and_a_tenant_may_open_with_a_sentence(
    platform: Platform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The platform's default: 3 whole words ("A men's haircut"), then the rest of the sentence.
    events, lines, _ = await stored(sessions, await call(platform, [PRICES]))
    chunks = reply_chunks(events)
    assert chunks[:2] == ["A men's haircut", "is £25 and takes 30 minutes."]
    assert " ".join(chunks) == " ".join(PRICE_ANSWER)
    played = [x.text for x in lines if x.turn_id == 1 and x.role == "agent"]
    assert played == chunks  # each segment was played whole, in order

    # A tenant that prefers a whole sentence first (0). (Other word counts: the unit tests of
    # `SpeakableChunker` and of the knob's resolution; each call here costs ~14 s of test time.)
    async with tenant_knobs(sessions, first_phrase_words=0):
        events, _, _ = await stored(sessions, await call(platform, [PRICES]))
    assert reply_chunks(events) == PRICE_ANSWER
