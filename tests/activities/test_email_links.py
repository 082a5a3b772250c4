"""The email activity's own checks: the payment page link it signs for each message, and the
suppression list (an address that unsubscribed gets nothing, whatever the case believes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from activities.email import EmailActivities, make_sendgrid_client
from models.activities import SendEmailInput
from models.channel_store import ChannelStore
from models.notification_store import NotificationStore
from models.pay_links import verify
from models.settings import Settings
from models.store import Ledger
from tests.activities.test_email import row, run
from tests.standin_control import SendGridControl
from worker import payment_page_link

PAGE = {"dunning_link_secret": "k1:test-secret", "dunning_public_url": "https://pay.example.com"}


def activities(settings: Settings, ledger: Ledger) -> EmailActivities:
    return EmailActivities(
        make_sendgrid_client(settings),
        NotificationStore(ledger.sessions),
        sender="billing@example.com",
        channels=ChannelStore(ledger.sessions),
        page_link=payment_page_link(settings),
    )


def test_messages_link_to_the_cases_payment_page_when_it_is_configured(
    settings: Settings,
    ledger: Ledger,
    message: SendEmailInput,
    sendgrid: SendGridControl,
) -> None:
    page = settings.model_copy(update=PAGE)
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    sent = run(activities(page, ledger), message.model_copy(update={"final_deadline": deadline}))
    assert sent.status == "sent"
    (email,) = sendgrid.messages(message.invoice_id)
    token = email["text"].split("https://pay.example.com/pay/", 1)[1].split()[0]
    assert verify(page, token) == message.invoice_id
    assert "invoice.stripe.com" not in email["text"]


def test_without_a_link_secret_messages_keep_stripes_hosted_page(
    settings: Settings,
    ledger: Ledger,
    message: SendEmailInput,
    sendgrid: SendGridControl,
) -> None:
    assert payment_page_link(settings) is None
    run(activities(settings, ledger), message)
    (email,) = sendgrid.messages(message.invoice_id)
    assert "https://invoice.stripe.com/i/test" in email["text"]


def test_an_unsubscribed_address_is_skipped_and_recorded(
    settings: Settings,
    ledger: Ledger,
    message: SendEmailInput,
    sendgrid: SendGridControl,
) -> None:
    address = f"gone.{uuid.uuid4().hex[:8]}@example.com"
    ChannelStore(ledger.sessions).set_opt_out("email", address, True, "unsubscribe")
    result = run(activities(settings, ledger), message.model_copy(update={"to_email": address}))
    assert (result.status, result.detail) == (
        "skipped",
        "the address unsubscribed (SendGrid event)",
    )
    assert sendgrid.messages(message.invoice_id) == []
    assert row(ledger, message.dedupe_key).status == "opted_out"


@pytest.mark.parametrize("secret", ["nokid", "k1:", ":secret"])
def test_a_malformed_link_secret_stops_the_worker_at_start(settings: Settings, secret: str) -> None:
    bad = settings.model_copy(update={**PAGE, "dunning_link_secret": secret})
    with pytest.raises(ValueError, match="kid:secret"):
        payment_page_link(bad)
