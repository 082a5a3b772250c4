"""The ledger's single-statement writes (models.store.Statements): autocommit, no pre-ping, one
more run on a fresh connection when PostgreSQL dropped the pooled one."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from models.channel_store import ChannelStore
from models.ledger import Attempt, Notification, utcnow
from models.notification_store import NotificationStore, Refusal
from models.store import Ledger, make_engine

DRIVERS = [d for d in ("psycopg2", "psycopg") if importlib.util.find_spec(d) is not None]


def opened(invoice: str) -> dict[str, Any]:
    return {
        "invoice_id": invoice, "workflow_id": f"dunning-{invoice}", "customer_id": "cus_st",
        "amount_due": 1200, "currency": "eur", "policy": "default", "opened_at": utcnow(),
    }  # fmt: skip


APP = "dunning-statements-test"  # this module's connections, and no one else's


@pytest.fixture(params=DRIVERS)
def own(database_url: str, request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """A ledger of this module's own, on each PostgreSQL driver a deployment may use."""
    url = make_url(database_url).set(drivername=f"postgresql+{request.param}")
    url = url.update_query_dict({"application_name": APP})
    ledger = Ledger(make_engine(url.render_as_string(hide_password=False)))
    yield ledger
    ledger.engine.dispose()


def connections(database_url: str, terminate: bool = False) -> int:
    """This module's connections to the database. `terminate` closes them from the server
    side, as a PostgreSQL restart does: a pool only finds out on its next use."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    what = "count(pg_terminate_backend(pid))" if terminate else "count(*)"
    with admin.connect() as conn:
        found = conn.scalar(
            text(f"SELECT {what} FROM pg_stat_activity WHERE application_name = :app"),
            {"app": APP},
        )
    admin.dispose()
    return int(found or 0)


def test_writes_go_on_after_the_server_dropped_every_connection(
    database_url: str, own: Ledger
) -> None:
    ledger = own
    invoice = f"in_statements_{ledger.engine.dialect.driver}"
    assert ledger.open_case(**opened(invoice)) is True
    store = NotificationStore(ledger.sessions)
    key = f"dunning-{invoice}:step:1"
    assert store.claim(1, invoice_id=invoice, dedupe_key=key, template="payment_failed")[0]
    assert connections(database_url, terminate=True) >= 1

    # The pooled connection is dead: the settle runs again on a fresh one, exactly once.
    store.settle(key, "sent", provider_message_id="msg_1")
    assert connections(database_url, terminate=True) >= 1
    attempt = {"invoice_id": invoice, "attempt_no": 1, "trigger": "schedule", "outcome": "declined"}
    assert ledger.record_attempt(idempotency_key=f"dunning-{invoice}:charge:1", **attempt)

    with ledger.sessions() as session:
        row = session.scalars(select(Notification).where(Notification.dedupe_key == key)).one()
        assert (row.status, row.provider_message_id) == ("sent", "msg_1")
        assert row.sent_at is not None
        count = select(func.count()).select_from(Attempt).where(Attempt.invoice_id == invoice)
        assert session.scalar(count) == 1


def test_an_error_that_is_not_a_lost_connection_is_raised_not_retried(ledger: Ledger) -> None:
    # An attempt row for a case the ledger never opened breaks the foreign key: that is the
    # caller's error to see, and running it again could not help.
    attempt = {"invoice_id": "in_never_opened", "attempt_no": 1, "trigger": "schedule"}
    attempt["outcome"] = "declined"
    with pytest.raises(IntegrityError):
        ledger.record_attempt(idempotency_key="dunning-in_never_opened:charge:1", **attempt)


def test_disposing_the_engine_closes_the_statements_connections(
    database_url: str, own: Ledger
) -> None:
    # Tests and benchmarks drop their database right after disposing of the engine.
    ledger = own
    ledger.open_case(**opened(f"in_statements_dispose_{ledger.engine.dialect.driver}"))
    with ledger.sessions() as session:  # one connection in each pool
        session.scalar(select(func.count()).select_from(Notification))
    assert connections(database_url) == 2
    ledger.engine.dispose()
    assert connections(database_url) == 0


def test_an_opted_out_address_is_claimed_as_opted_out_in_one_go(ledger: Ledger) -> None:
    invoice = "in_statements_optout"
    ledger.open_case(**opened(invoice))
    ChannelStore(ledger.sessions).set_opt_out("email", "Gone@Example.com", True, "unsubscribe")
    store = NotificationStore(ledger.sessions)
    sent: dict[str, str] = {}
    for address in ("gone@example.com", "here@example.com"):
        key = f"dunning-{invoice}:{address}"
        refusal = Refusal("email", address, "unsubscribed")
        claimed, row = store.claim(
            1, unless=refusal, invoice_id=invoice, dedupe_key=key, template="t"
        )
        assert claimed
        sent[address] = f"{row.status}:{row.error}"
        again, held = store.claim(
            2, unless=refusal, invoice_id=invoice, dedupe_key=key, template="t"
        )
        assert (again, held.status) == (
            False,
            "uncertain" if row.status == "claimed" else row.status,
        )
    assert sent == {
        "gone@example.com": "opted_out:unsubscribed",
        "here@example.com": "claimed:None",
    }
