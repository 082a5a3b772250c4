"""Email activity: at most one message per dedupe key, across retries and worker crashes."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities, SendGridRetryableError
from models.activities import SendEmailInput
from models.ledger import Notification
from models.notification_store import NotificationStore
from models.store import Ledger
from tests.activities.conftest import open_case
from tests.standin_control import SendGridControl, StripeControl


@pytest.fixture
def message(stripe_control: StripeControl, ledger: Ledger) -> SendEmailInput:
    case = stripe_control.failed_invoice("pm_card_chargeDeclinedInsufficientFunds")
    open_case(ledger, case)
    return SendEmailInput(
        invoice_id=case.invoice,
        dedupe_key=f"dunning-{case.invoice}:step:2",
        template="payment_failed",
        level="friendly",
        step=2,
        to_email="ada@example.com",
        customer_id=case.customer,
        customer_name="Ada",
        locale="de",
        amount_due=1200,
        currency="eur",
        hosted_invoice_url="https://invoice.stripe.com/i/test",
    )


def run(activities: EmailActivities, input: SendEmailInput, attempt: int = 1):  # type: ignore[no-untyped-def]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env.run(activities.send_email, input)


def row(ledger: Ledger, key: str) -> Notification:
    with ledger.sessions() as session:
        return session.query(Notification).filter_by(dedupe_key=key).one()


def test_sends_once_with_the_dedupe_key_as_custom_arg(
    email_activities: EmailActivities,
    message: SendEmailInput,
    sendgrid: SendGridControl,
    ledger: Ledger,
) -> None:
    first = run(email_activities, message)
    again = run(email_activities, message, attempt=2)
    assert first.status == "sent" and first.provider_message_id
    assert (again.status, again.provider_message_id) == ("duplicate", first.provider_message_id)
    (sent,) = sendgrid.messages(message.invoice_id)
    assert sent["custom_args"]["dunning_dedupe_key"] == message.dedupe_key
    assert "Ada" in sent["text"] and "12,00" in sent["text"]
    stored = row(ledger, message.dedupe_key)
    assert (stored.status, stored.template, stored.to_address) == (
        "sent",
        "payment_failed",
        "ada@example.com",
    )
    assert stored.subject == sent["subject"] and stored.sent_at is not None


def test_a_crash_between_send_and_commit_is_never_resent(
    email_activities: EmailActivities,
    message: SendEmailInput,
    sendgrid: SendGridControl,
    ledger: Ledger,
) -> None:
    # Attempt 1 claimed the key and died before recording the outcome.
    claimed, _ = NotificationStore(ledger.sessions).claim(
        attempt=1,
        invoice_id=message.invoice_id,
        dedupe_key=message.dedupe_key,
        template=message.template,
    )
    assert claimed
    result = run(email_activities, message, attempt=2)
    assert result.status == "uncertain"
    assert sendgrid.messages(message.invoice_id) == []
    assert row(ledger, message.dedupe_key).status == "uncertain"


def test_server_errors_are_retried_then_sent_once(
    email_activities: EmailActivities,
    message: SendEmailInput,
    sendgrid: SendGridControl,
    ledger: Ledger,
) -> None:
    sendgrid.fault(500, count=1, to_contains="ada@")
    with pytest.raises(SendGridRetryableError, match="500"):
        run(email_activities, message)
    assert row(ledger, message.dedupe_key).status == "failed_retryable"
    assert run(email_activities, message, attempt=2).status == "sent"
    assert len(sendgrid.messages(message.invoice_id)) == 1


def test_a_rejected_address_is_recorded_not_retried(
    email_activities: EmailActivities,
    message: SendEmailInput,
    sendgrid: SendGridControl,
    ledger: Ledger,
) -> None:
    # SendGrid refuses the recipient (e.g. a domain that cannot receive mail): a 400.
    sendgrid.fault(400, count=1, to_contains="ada@")
    bad = message
    result = run(email_activities, bad)
    assert result.status == "rejected" and "400" in (result.detail or "")
    stored = row(ledger, message.dedupe_key)
    assert stored.status == "rejected" and "valid address" in (stored.error or "")
    assert run(email_activities, bad, attempt=2).status == "duplicate"
    assert sendgrid.messages(message.invoice_id) == []


def test_no_address_is_recorded(
    email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    result = run(email_activities, message.model_copy(update={"to_email": None}))
    assert result.status == "no_address"
    assert row(ledger, message.dedupe_key).status == "no_address"


def test_an_address_the_sdk_cannot_parse_is_rejected(
    email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    result = run(email_activities, message.model_copy(update={"to_email": "not-an-address"}))
    assert result.status == "rejected" and "invalid recipient" in (result.detail or "")
    assert row(ledger, message.dedupe_key).status == "rejected"
