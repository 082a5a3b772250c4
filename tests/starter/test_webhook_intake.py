"""Group commit: concurrent deliveries share transactions, and each gets its own answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError

from models.store import Ledger
from models.stripe_events import Claim, StripeEventStore
from starter.webhooks.intake import Intake
from tests.models.test_stripe_events import delivery, stored


class CountingStore(StripeEventStore):
    """The real store, remembering the size of each transaction it was asked for."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger.sessions)
        self.batches: list[int] = []

    def accept_many(self, rows: list[dict[str, Any]]) -> list[Claim | None]:
        self.batches.append(len(rows))
        return super().accept_many(rows)


async def test_concurrent_deliveries_share_commits_and_get_their_own_answers(
    ledger: Ledger,
) -> None:
    store = CountingStore(ledger)
    intake = Intake(store)
    ids = [f"evt_{uuid.uuid4().hex[:12]}" for _ in range(40)]
    assert await intake.keep(**delivery(f"evt_{uuid.uuid4().hex[:12]}")) is None
    assert store.batches == [1]  # alone, a delivery is committed at once, without waiting

    answers = await asyncio.gather(*(intake.keep(**delivery(e)) for e in ids + ids[:10]))

    assert answers[:40] == [None] * 40  # each event kept once...
    assert answers[40:] == [Claim(owned=False, status="queued")] * 10  # ...copies are duplicates
    assert sum(store.batches) == 51
    assert len(store.batches) < 51  # deliveries that arrived together shared a transaction
    assert {stored(ledger, e).deliveries for e in ids[:10]} == {2}


async def test_a_row_the_database_refuses_costs_only_its_own_delivery(ledger: Ledger) -> None:
    intake = Intake(StripeEventStore(ledger.sessions))
    good = [f"evt_{uuid.uuid4().hex[:12]}" for _ in range(3)]
    bad = {**delivery(f"evt_{uuid.uuid4().hex[:12]}"), "type": "x" * 5000}  # past String(…)

    results = await asyncio.gather(
        *(intake.keep(**delivery(e)) for e in good[:2]),
        intake.keep(**bad),
        intake.keep(**delivery(good[2])),
        return_exceptions=True,
    )

    assert results[0] is None and results[1] is None and results[3] is None
    assert isinstance(results[2], DataError)
    assert all(stored(ledger, e).deliveries == 1 for e in good)


async def test_the_database_away_fails_every_waiting_delivery(ledger: Ledger) -> None:
    class Down(StripeEventStore):
        def accept_many(self, rows: list[dict[str, Any]]) -> list[Claim | None]:
            raise OperationalError("INSERT", {}, Exception("connection refused"))

    intake = Intake(Down(ledger.sessions))
    with pytest.raises(OperationalError):
        await intake.keep(**delivery("evt_never_kept"))
