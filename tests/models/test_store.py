"""The store's idempotent writes with each PostgreSQL driver a deployment may use."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from models.ledger import Notification, utcnow
from models.notification_store import NotificationStore
from models.store import Ledger, make_engine

# A plain `postgresql://` URL means psycopg 3 to SQLAlchemy 2.1 once it is installed.
DRIVERS = [d for d in ("psycopg2", "psycopg") if importlib.util.find_spec(d) is not None]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_second_claim_of_a_key_is_refused(database_url: str, driver: str) -> None:
    url = make_url(database_url).set(drivername=f"postgresql+{driver}")
    ledger = Ledger(make_engine(url.render_as_string(hide_password=False)))
    invoice = f"in_store_{driver}"
    opened = {"workflow_id": "w", "customer_id": "c", "amount_due": 1, "currency": "eur"}
    case = {"invoice_id": invoice, "policy": "default", "opened_at": datetime.now(UTC), **opened}
    assert ledger.open_case(**case) is True
    assert ledger.open_case(**case) is False
    notifications = NotificationStore(ledger.sessions)
    key = f"dunning-{invoice}:step:2"
    assert notifications.claim(1, invoice_id=invoice, dedupe_key=key, template="reminder")[0]
    notifications.settle(key, "uncertain", error="timeout")
    claimed, row = notifications.claim(2, invoice_id=invoice, dedupe_key=key, template="reminder")
    assert (claimed, row.status, row.claim_attempt) == (False, "uncertain", 1)
    ledger.engine.dispose()


def test_a_claim_left_by_a_dead_execution_is_uncertain_even_under_the_same_attempt(
    ledger: Ledger,
) -> None:
    # A local activity run again after its worker was killed starts over at attempt 1: the
    # claim it finds is not its own, and the message may or may not have gone out.
    invoice = "in_store_rerun"
    opened = {"workflow_id": "w", "customer_id": "c", "amount_due": 1, "currency": "eur"}
    ledger.open_case(invoice_id=invoice, policy="default", opened_at=utcnow(), **opened)
    notifications = NotificationStore(ledger.sessions)
    key = f"dunning-{invoice}:step:2"
    assert notifications.claim(1, invoice_id=invoice, dedupe_key=key, template="reminder")[0]
    claimed, row = notifications.claim(1, invoice_id=invoice, dedupe_key=key, template="reminder")
    assert (claimed, row.status) == (False, "uncertain")


def test_unresolved_lists_uncertain_and_stale_claims(ledger: Ledger) -> None:
    invoice = "in_store_unresolved"
    ledger.open_case(
        invoice_id=invoice, workflow_id="w", customer_id="c", amount_due=1, currency="eur",
        policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    store = NotificationStore(ledger.sessions)
    keys = {s: f"dunning-{invoice}:{s}" for s in ("uncertain", "stale", "fresh", "sent")}
    for key in keys.values():
        store.claim(attempt=1, invoice_id=invoice, dedupe_key=key, template="x")
    store.settle(keys["uncertain"], "uncertain", error="timeout")
    store.settle(keys["sent"], "sent")
    claimed_at = {keys["stale"]: 11 * 60, keys["uncertain"]: 60}
    with ledger.sessions.begin() as session:
        for key, seconds in claimed_at.items():
            session.execute(
                update(Notification)
                .where(Notification.dedupe_key == key)
                .values(created_at=utcnow() - timedelta(seconds=seconds))
            )
    listed = store.unresolved(claimed_for=timedelta(minutes=10), invoice_id=invoice)
    assert [(n.dedupe_key, n.status) for n in listed] == [
        (keys["stale"], "claimed"),
        (keys["uncertain"], "uncertain"),
    ]
