"""A call's cost: its metered usage priced from the price table, one line per provider+metric.

Recomputed from `usage_records` whenever usage arrives after the call (Twilio's status callback),
under a lock on the call's row, so concurrent recomputations settle on the complete figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Call, CallCost, CostLineItem, UsageRecord
from shared.db.tenancy import Tenant
from shared.tenancy.pricing import PriceBook, PriceTable, line_amount

TELEPHONY_METRIC = "telephony_minutes"
WASTED = "wasted_"
"""Tokens of a discarded preemptive reply (issue 17): their own cost line, priced like the
tokens they are (`wasted_prompt_tokens` as `prompt_tokens`) unless the table prices them."""


@dataclass(frozen=True)
class MeteredUsage:
    """Total quantity of one metric of one provider in a call."""

    provider: str
    metric: str
    quantity: Decimal


@dataclass(frozen=True)
class PricedLine:
    """A cost line: quantity x unit price (None: the table has no price; amount 0)."""

    provider: str
    metric: str
    quantity: Decimal
    unit_price_minor: Decimal | None
    amount_minor: Decimal


def price_lines(usage: list[MeteredUsage], table: PriceTable) -> tuple[list[PricedLine], Decimal]:
    """Lines for `usage` and their exact total (pure)."""
    lines: list[PricedLine] = []
    for item in sorted(usage, key=lambda u: (u.provider, u.metric)):
        price = table.unit_price(item.provider, item.metric)
        if price is None and item.metric.startswith(WASTED):
            price = table.unit_price(item.provider, item.metric.removeprefix(WASTED))
        amount = line_amount(item.quantity, price) if price is not None else Decimal(0)
        lines.append(PricedLine(item.provider, item.metric, item.quantity, price, amount))
    return lines, sum((line.amount_minor for line in lines), Decimal(0))


async def metered_usage(session: AsyncSession, call_sid: str) -> list[MeteredUsage]:
    """The call's usage summed per provider and metric."""
    rows = await session.execute(
        select(UsageRecord.provider, UsageRecord.metric, func.sum(UsageRecord.quantity))
        .where(UsageRecord.call_sid == call_sid)
        .group_by(UsageRecord.provider, UsageRecord.metric)
    )
    return [MeteredUsage(p, m, Decimal(q)) for p, m, q in rows.all()]


async def compute_call_cost(
    session: AsyncSession, call_sid: str, prices: PriceTable | PriceBook
) -> Decimal | None:
    """Store the call's cost and line items (replacing earlier ones); None if no such call.
    With a price book, the call is priced in its tenant's currency.

    The caller commits. Locks the call's row until then.
    """
    call = await session.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    if call is None:
        return None
    table = prices
    if isinstance(prices, PriceBook):
        currency = None
        if call.tenant_id is not None:
            currency = await session.scalar(
                select(Tenant.currency).where(Tenant.id == call.tenant_id)
            )
        table = prices.for_currency(currency)
    assert isinstance(table, PriceTable)
    lines, total = price_lines(await metered_usage(session, call_sid), table)
    values = {
        "tenant_id": call.tenant_id,
        "currency": table.currency,
        "total_minor": total,
        "telephony_metered": any(line.metric == TELEPHONY_METRIC for line in lines),
        "computed_at": func.now(),
    }
    await session.execute(
        insert(CallCost)
        .values(call_sid=call_sid, **values)
        .on_conflict_do_update(index_elements=["call_sid"], set_=values)
    )
    await session.execute(delete(CostLineItem).where(CostLineItem.call_sid == call_sid))
    if lines:
        await session.execute(
            insert(CostLineItem).values(
                [
                    {
                        "call_sid": call_sid,
                        "provider": line.provider,
                        "metric": line.metric,
                        "quantity": line.quantity,
                        "unit_price_minor": line.unit_price_minor or Decimal(0),
                        "amount_minor": line.amount_minor,
                        "currency": table.currency,
                        "priced": line.unit_price_minor is not None,
                    }
                    for line in lines
                ]
            )
        )
    return total
