"""A case's facts for the segment rules, from the Stripe objects the case opens with.

Pure (the objects are read like mappings, whatever library fetched them), so the opening
activity and `dunning explain` decide from the same facts in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.rules import CaseFacts
from policies.schema import DeclineClass


def get(obj: Any, *path: str) -> Any:
    """obj.a.b.c for StripeObjects and dicts alike; None where anything is missing."""
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if hasattr(obj, "get") else getattr(obj, key, None)
    return obj


def object_id(value: Any) -> str | None:
    """An id whether Stripe sent the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    found = get(value, "id")
    return found if isinstance(found, str) else None


def _plain(metadata: Any) -> dict[str, str]:
    # stripe-python 16's StripeObject is no longer a dict: ask it for one.
    plain = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata or {})
    return {str(k): str(v) for k, v in plain.items()}


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def facts_from_stripe(
    invoice: Any,
    customer: Any,
    subscription: Any,
    cls: DeclineClass,
    at: datetime,
    prior: Sequence[datetime],
) -> CaseFacts:
    """`prior`: when the customer's earlier cases opened (the ledger's prior failures)."""
    plans: set[str | None] = set()
    prices: set[str | None] = set()
    # Subscription items carry a price object; invoice lines name theirs in pricing details.
    for item in get(subscription, "items", "data") or []:
        prices.add(object_id(get(item, "price")))
        plans.update([object_id(get(item, "plan")), object_id(get(item, "price", "product"))])
    for line in get(invoice, "lines", "data") or []:
        prices.add(get(line, "pricing", "price_details", "price"))
        plans.add(object_id(get(line, "pricing", "price_details", "product")))
    created = get(customer, "created")
    earlier = sorted(aware(moment) for moment in prior)

    def prior_failures(within: timedelta) -> int:
        return sum(1 for moment in earlier if at - within <= moment < at)

    return CaseFacts(
        now=at,
        amount=int(get(invoice, "amount_due") or 0),
        currency=str(get(invoice, "currency") or "").lower(),
        decline_class=cls,
        plans=frozenset(p for p in plans if p),
        prices=frozenset(p for p in prices if p),
        country=get(customer, "address", "country"),
        customer_created_at=datetime.fromtimestamp(created, UTC) if created else None,
        prior_failures=prior_failures,
        metadata=_plain(get(customer, "metadata")),
    )
