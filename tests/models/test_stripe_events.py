"""Keeping Stripe deliveries in batches: one row per event id, redeliveries counted."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from models.store import Ledger
from models.stripe_events import Claim, StripeEvent, StripeEventStore


def delivery(event_id: str, status: str = "queued") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "payload": json.dumps({"id": event_id}),
        "status": status,
        "type": "invoice.payment_failed",
        "api_version": "2026-10-28.endive",
        "livemode": False,
        "object_id": f"in_{event_id}",
        "event_created": datetime.now(UTC),
    }


def stored(ledger: Ledger, event_id: str) -> StripeEvent:
    with ledger.sessions() as session:
        return session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).one()


def test_a_batch_keeps_each_new_event_once_and_counts_every_other_copy(ledger: Ledger) -> None:
    store = StripeEventStore(ledger.sessions)
    known, new, twice = (f"evt_{uuid.uuid4().hex[:12]}" for _ in range(3))
    assert store.accept_many([delivery(known)]) == [None]

    answers = store.accept_many(
        [delivery(new), delivery(known), delivery(twice, "processing"), delivery(twice)]
    )

    queued = Claim(owned=False, status="queued")
    assert answers == [None, queued, None, Claim(owned=False, status="processing")]
    assert [stored(ledger, e).deliveries for e in (new, known, twice)] == [1, 2, 2]
    assert stored(ledger, twice).status == "processing"  # the first copy's row, as kept
    assert stored(ledger, new).payload == json.dumps({"id": new})


def test_a_batch_of_redeliveries_only_counts(ledger: Ledger) -> None:
    store = StripeEventStore(ledger.sessions)
    event_id = f"evt_{uuid.uuid4().hex[:12]}"
    assert store.accept_many([delivery(event_id)]) == [None]
    assert store.accept_many([delivery(event_id)] * 3) == [Claim(owned=False, status="queued")] * 3
    assert stored(ledger, event_id).deliveries == 4
