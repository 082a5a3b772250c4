"""Ledger writes that land after their activity returned (models/later.py): reads in the
process wait for them, the ledger's own statements do not, failures are tried again, and a
`sent` settle never undoes what a delivery report wrote."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from models import later
from models.ledger import Notification, utcnow
from models.notification_store import NotificationStore
from models.store import Ledger


def opened(invoice: str) -> dict[str, Any]:
    return {
        "invoice_id": invoice, "workflow_id": f"dunning-{invoice}", "customer_id": "cus_later",
        "amount_due": 1200, "currency": "eur", "policy": "default", "opened_at": utcnow(),
    }  # fmt: skip


@pytest.fixture
def claimed(ledger: Ledger, request: pytest.FixtureRequest) -> Iterator[str]:
    """A message claimed and not yet settled; its dedupe key."""
    invoice = f"in_later_{request.node.name}"[:60]
    ledger.open_case(**opened(invoice))
    key = f"dunning-{invoice}:step:1"
    assert NotificationStore(ledger.sessions).claim(
        1, invoice_id=invoice, dedupe_key=key, template="t"
    )[0]
    yield key
    assert later.wait_for_writes()


def status(ledger: Ledger, key: str) -> tuple[str, str | None]:
    with ledger.sessions() as session:
        row = session.scalars(select(Notification).where(Notification.dedupe_key == key)).one()
        return row.status, row.provider_message_id


class Gate:
    """A later write that waits until the test opens the gate, so the test sees it pending."""

    def __init__(self) -> None:
        self.opened = threading.Event()

    def write(self) -> None:
        assert self.opened.wait(10)


def test_a_read_in_the_process_sees_the_settle_its_activity_asked_for(
    ledger: Ledger, claimed: str
) -> None:
    gate = Gate()
    later.run_later(gate.write, "a held write")  # the settle queues behind it
    NotificationStore(ledger.sessions).settle_sent(claimed, "msg_later")
    threading.Timer(0.3, gate.opened.set).start()
    started = time.monotonic()
    assert status(ledger, claimed) == ("sent", "msg_later")
    assert time.monotonic() - started >= 0.25  # the read waited for both writes


def test_the_ledgers_own_statements_do_not_wait(ledger: Ledger, claimed: str) -> None:
    gate = Gate()
    later.run_later(gate.write, "a held write")
    try:
        # A claim must not queue behind another message's settle.
        store = NotificationStore(ledger.sessions)
        invoice = claimed.split(":")[0].removeprefix("dunning-")
        fresh, row = store.claim(1, invoice_id=invoice, dedupe_key=f"{claimed}:b", template="t")
        assert fresh and row.status == "claimed"
        assert not later.wait_for_writes(timeout=0.05)  # the held write is still pending
    finally:
        gate.opened.set()
    assert later.wait_for_writes()


def test_a_write_the_database_refused_is_tried_again(
    ledger: Ledger, claimed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(later, "RETRY_AFTER", (0.01, 0.01))
    tries: list[int] = []

    def flaky() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("UPDATE", {}, Exception("the server closed the connection"))
        NotificationStore(ledger.sessions).settle(claimed, "sent", provider_message_id="m3")

    later.run_later(flaky, "a flaky write")
    assert later.wait_for_writes()
    assert len(tries) == 3 and status(ledger, claimed) == ("sent", "m3")


def test_a_write_that_never_lands_leaves_the_claim_to_the_sweep(
    ledger: Ledger, claimed: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(later, "RETRY_AFTER", (0.01,))

    def down() -> None:
        raise OperationalError("UPDATE", {}, Exception("could not connect"))

    later.run_later(down, "the sent settle of k")
    later.run_later(lambda: 1 / 0, "a broken write")
    NotificationStore(ledger.sessions).settle_sent(claimed, "msg_after")  # the thread lives on
    assert later.wait_for_writes()
    assert "the sent settle of k did not land" in caplog.text
    assert "a broken write failed" in caplog.text
    assert status(ledger, claimed) == ("sent", "msg_after")


def test_a_late_sent_settle_never_undoes_a_delivery_report(ledger: Ledger, claimed: str) -> None:
    store = NotificationStore(ledger.sessions)
    store.settle(claimed, "delivered", provider_message_id="SM1")
    store.settle_sent(claimed, "SM1")
    assert later.wait_for_writes()
    assert status(ledger, claimed) == ("delivered", "SM1")
