"""Pure parts of preemptive replies (issue 17): comparing transcripts as words, and pricing the
tokens of a discarded reply on a line of their own."""

from __future__ import annotations

from decimal import Decimal

from services.recorder.costing import MeteredUsage, price_lines
from shared.contract.utterance_text import normalised, same_words
from shared.tenancy.pricing import EXAMPLE_PRICES, Price, PriceTable


def test_transcripts_compare_as_words() -> None:
    assert normalised("Hi, what are your  opening-hours?") == "hi what are your opening hours"
    assert same_words("And where are you located?", "and where are you located")
    assert same_words("I’m free at 3.", "i'm free at 3")
    assert not same_words("Book a table, please.", "Book a cable, please.")
    assert not same_words("Great, thanks,", "Great, thanks, bye.")
    assert normalised("?!") == ""


def test_wasted_tokens_are_their_own_cost_line_priced_like_the_tokens_they_are() -> None:
    usage = [
        MeteredUsage("gpt-4o-mini", "prompt_tokens", Decimal(1000)),
        MeteredUsage("gpt-4o-mini", "wasted_prompt_tokens", Decimal(400)),
        MeteredUsage("gpt-4o-mini", "wasted_completion_tokens", Decimal(10)),
    ]
    lines, total = price_lines(usage, EXAMPLE_PRICES)
    by_metric = {line.metric: line for line in lines}
    prompt = EXAMPLE_PRICES.unit_price("gpt-4o-mini", "prompt_tokens")
    completion = EXAMPLE_PRICES.unit_price("gpt-4o-mini", "completion_tokens")
    assert by_metric["wasted_prompt_tokens"].unit_price_minor == prompt
    assert by_metric["wasted_completion_tokens"].unit_price_minor == completion
    assert by_metric["wasted_prompt_tokens"].amount_minor > 0
    assert total == sum((line.amount_minor for line in lines), Decimal(0))


def test_a_table_may_price_wasted_tokens_itself() -> None:
    table = PriceTable(
        currency="USD",
        prices=[
            Price(provider="*", metric="prompt_tokens", unit_price_minor=Decimal("0.1")),
            Price(provider="*", metric="wasted_prompt_tokens", unit_price_minor=Decimal("0")),
        ],
    )
    lines, total = price_lines([MeteredUsage("m", "wasted_prompt_tokens", Decimal(50))], table)
    assert lines[0].unit_price_minor == Decimal("0") and total == Decimal(0)
