"""The report by channel: sent, delivered (SMS reports), read (in-app), recovered after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from models.ledger import Notification
from models.notification_store import NotificationStore
from models.store import Ledger
from starter.support.report import compute_report
from starter.support.report_channels import ChannelRow

SINCE = datetime(2032, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _case(ledger: Ledger, invoice: str, opened: datetime) -> None:
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_channels",
        amount_due=1000, currency="eur", policy="default", opened_at=opened,
    )  # fmt: skip


def _message(
    ledger: Ledger, invoice: str, channel: str, status: str, at: datetime, read: bool = False
) -> None:
    key = f"dunning-{invoice}:step:1:{channel}"
    store = NotificationStore(ledger.sessions)
    store.claim(1, invoice_id=invoice, dedupe_key=key, template="urgent", channel=channel)
    store.settle(key, status)
    values = {"sent_at": at, "created_at": at, "read_at": at + DAY if read else None}
    with ledger.sessions.begin() as session:
        session.execute(update(Notification).where(Notification.dedupe_key == key).values(values))


def test_each_channel_counts_what_it_sent_delivered_got_read_and_recovered(
    ledger: Ledger,
) -> None:
    # Recovered after an email and a delivered text; a second case never recovered.
    _case(ledger, "in_ch_recovered", SINCE)
    _message(ledger, "in_ch_recovered", "email", "sent", SINCE + DAY)
    _message(ledger, "in_ch_recovered", "sms", "delivered", SINCE + DAY)
    _message(ledger, "in_ch_recovered", "in_app", "sent", SINCE + DAY, read=True)
    ledger.record_outcome("in_ch_recovered", "recovered", "eur", 2, 1000, closed_at=SINCE + 2 * DAY)
    _case(ledger, "in_ch_open", SINCE + DAY)
    _message(ledger, "in_ch_open", "sms", "undelivered", SINCE + 2 * DAY)
    _message(ledger, "in_ch_open", "email", "no_address", SINCE + 2 * DAY)
    # A text sent after the recovery did not help it.
    _case(ledger, "in_ch_late", SINCE)
    ledger.record_outcome("in_ch_late", "recovered", "eur", 1, 1000, closed_at=SINCE + DAY)
    _message(ledger, "in_ch_late", "sms", "sent", SINCE + 3 * DAY)

    with Session(ledger.engine) as session:
        rows = compute_report(session, SINCE, SINCE + 30 * DAY).by_channel

    assert rows == [
        # SendGrid's events report delivery and opens: none came for this one.
        ChannelRow(channel="email", sent=1, delivered=0, engaged=0, recovered_after=1),
        ChannelRow(channel="in_app", sent=1, delivered=None, engaged=1, recovered_after=1),
        ChannelRow(channel="sms", sent=3, delivered=1, engaged=None, recovered_after=1),
    ]
