"""The store's idempotent writes with each PostgreSQL driver a deployment may use."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url

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
