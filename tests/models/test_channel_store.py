"""ChannelStore's email side: a SendGrid event finds its email by the X-Message-Id the send
stored or by the full msg_id the Email Activity API gave; dated opt-outs ignore repeats and
late arrivals; email addresses are one whatever their case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models.channel_store import ChannelStore, EmailReport
from models.ledger import Notification
from models.store import Ledger


def email_row(ledger: Ledger, provider_message_id: str, channel: str = "email") -> None:
    invoice = f"in_{uuid.uuid4().hex[:14]}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_store",
        amount_due=1200, currency="eur", policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    with ledger.sessions.begin() as session:
        session.add(
            Notification(
                invoice_id=invoice, dedupe_key=f"dunning-{invoice}:step:1", channel=channel,
                template="payment_failed", status="sent", to_address="Ana@Example.com",
                provider_message_id=provider_message_id,
            )
        )  # fmt: skip


def status_of(ledger: Ledger, provider_message_id: str) -> tuple[str, datetime | None]:
    with ledger.sessions() as session:
        row = session.query(Notification).filter_by(provider_message_id=provider_message_id).one()
        return row.status, row.read_at


def test_an_event_finds_its_email_by_the_send_id_or_the_full_msg_id(ledger: Ledger) -> None:
    store = ChannelStore(ledger.sessions)
    sent, resolved = uuid.uuid4().hex[:22], f"{uuid.uuid4().hex[:22]}.filter0001.1.2.0"
    email_row(ledger, sent)
    email_row(ledger, resolved)
    sms = uuid.uuid4().hex[:22]
    email_row(ledger, sms, channel="sms")
    opened = datetime.now(UTC) - timedelta(minutes=5)

    reports = [
        EmailReport(f"{sent}.filter0001.16648.5515E0B88.0", "delivered"),
        EmailReport(resolved, engaged_at=opened),
        EmailReport(resolved, engaged_at=datetime.now(UTC)),  # not the first
        EmailReport(f"{sms}.filter0001.1.2.0", "delivered"),  # not an email
    ]
    assert store.email_reports(reports) == [True, True, True, False]

    assert status_of(ledger, sent) == ("delivered", None)
    assert status_of(ledger, resolved) == ("sent", opened)
    assert status_of(ledger, sms) == ("sent", None)


def test_a_dated_opt_out_ignores_repeats_and_late_events(ledger: Ledger) -> None:
    store, email = ChannelStore(ledger.sessions), f"{uuid.uuid4().hex[:8]}@Example.com"
    first = datetime.now(UTC) - timedelta(minutes=10)

    assert store.set_opt_out("email", email, True, "sendgrid unsubscribe", at=first)
    assert not store.set_opt_out("email", email, True, "sendgrid unsubscribe", at=first)
    assert store.set_opt_out(
        "email", email.upper(), False, "sendgrid resub", at=first + timedelta(minutes=1)
    )
    assert not store.set_opt_out("email", email, True, "sendgrid unsubscribe", at=first)
    assert not store.is_opted_out("email", email.lower())
    assert store.set_opt_out("email", email, True, "support")  # undated: always applies
    assert store.is_opted_out("email", email)


def test_customers_at_an_email_address_ignore_its_case(ledger: Ledger) -> None:
    email_row(ledger, uuid.uuid4().hex[:22])
    assert "cus_store" in ChannelStore(ledger.sessions).customers_at("email", "ana@EXAMPLE.com")
