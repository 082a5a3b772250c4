"""Email activity: exactly one message per dedupe key, across retries and worker crashes.

A crash or a timeout leaves SendGrid's side unknown; the next attempt asks the stand-in's Email
Activity API. Assertions read what the stand-in received and the ledger row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import (
    MIN_UNLISTED_AGE,
    EmailActivities,
    SendGridRetryableError,
    make_sendgrid_client,
)
from models.activities import SendEmailInput, SendEmailResult
from models.ledger import Notification, utcnow
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from tests.deadline import eventually_sync
from tests.standin_control import SendGridControl


def run(activities: EmailActivities, input: SendEmailInput, attempt: int = 1) -> SendEmailResult:
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


@pytest.fixture
def feed(sendgrid: SendGridControl) -> Iterator[SendGridControl]:
    """The stand-in's Email Activity API, restored for the next test."""
    yield sendgrid
    sendgrid.activity_feed(available=True, lag_seconds=0)


def activities(settings: Settings, ledger: Ledger, timeout: float = 3) -> EmailActivities:
    """Answers "not listed" at once (minimum claim age 0), with its own SendGrid timeout."""
    client = make_sendgrid_client(settings.model_copy(update={"sendgrid_timeout_seconds": timeout}))
    store = NotificationStore(ledger.sessions)
    return EmailActivities(client, store, "billing@example.com", min_unlisted_age=timedelta(0))


class WorkerKilled(BaseException):
    """Like SIGKILL, nothing in the activity catches it."""


def killed(*args: object, **kwargs: object) -> None:
    raise WorkerKilled()


def crash_after_claim(ledger: Ledger, message: SendEmailInput) -> None:
    """Attempt 1 claimed the key, then the worker died before (or during) the SendGrid call."""
    claimed, _ = NotificationStore(ledger.sessions).claim(
        attempt=1, invoice_id=message.invoice_id, dedupe_key=message.dedupe_key, template="x"
    )
    assert claimed


def age_claim(ledger: Ledger, key: str, seconds: float) -> None:
    with ledger.sessions.begin() as session:
        session.execute(
            update(Notification)
            .where(Notification.dedupe_key == key)
            .values(created_at=utcnow() - timedelta(seconds=seconds))
        )


def test_a_crash_before_sendgrid_took_it_is_sent_once_the_claim_is_old_enough(
    email_activities: EmailActivities,
    message: SendEmailInput,
    sendgrid: SendGridControl,
    ledger: Ledger,
) -> None:
    crash_after_claim(ledger, message)
    # Too young: SendGrid's feed may simply not list it yet, so ask again later, never send.
    with pytest.raises(ApplicationError, match="not in SendGrid's email activity yet") as exc:
        run(email_activities, message, attempt=2)
    assert exc.value.type == "SendGridDeliveryUnknown" and not exc.value.non_retryable
    limit = MIN_UNLISTED_AGE.total_seconds()
    assert limit - 10 < exc.value.next_retry_delay.total_seconds() <= limit  # type: ignore[union-attr]
    assert sendgrid.messages(message.invoice_id) == []
    assert row(ledger, message.dedupe_key).status == "uncertain"

    age_claim(ledger, message.dedupe_key, MIN_UNLISTED_AGE.total_seconds() + 1)
    result = run(email_activities, message, attempt=3)
    (sent,) = sendgrid.messages(message.invoice_id)
    assert (result.status, result.provider_message_id) == ("sent", sent["message_id"])
    assert sent["custom_args"]["dunning_dedupe_key"] == message.dedupe_key
    stored = row(ledger, message.dedupe_key)
    assert (stored.status, stored.claim_attempt, stored.error) == ("sent", 3, None)
    assert run(email_activities, message, attempt=4).status == "duplicate"
    assert len(sendgrid.messages(message.invoice_id)) == 1
    queries = [q["query"] for q in sendgrid.feed_queries() if message.dedupe_key in q["query"]]
    assert queries == [f"unique_args['dunning_dedupe_key']=\"{message.dedupe_key}\""] * 2


def test_a_crash_after_sendgrid_took_it_records_sent_without_resending(
    email_activities: EmailActivities,
    message: SendEmailInput,
    sendgrid: SendGridControl,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as patch:
        # The worker dies after SendGrid's 202, before its sent settle lands (models/later.py).
        patch.setattr(NotificationStore, "settle_sent", killed)
        with pytest.raises(WorkerKilled):
            run(email_activities, message)
    assert row(ledger, message.dedupe_key).status == "claimed"
    # Found even though the claim is fresh: only "not listed" has to wait.
    result = run(email_activities, message, attempt=2)
    (sent,) = sendgrid.messages(message.invoice_id)
    assert result.status == "sent" and "email activity" in (result.detail or "")
    assert (result.provider_message_id or "").startswith(sent["message_id"] + ".")
    stored = row(ledger, message.dedupe_key)
    assert (stored.status, stored.provider_message_id) == ("sent", result.provider_message_id)


def test_a_timeout_after_sendgrid_accepted_is_recorded_once(
    settings: Settings, ledger: Ledger, message: SendEmailInput, sendgrid: SendGridControl
) -> None:
    slow = activities(settings, ledger, timeout=0.3)
    sendgrid.hang(1.5, to_contains="ada@")  # accepted at once, answered after the timeout
    with pytest.raises(ApplicationError, match="did not answer in time") as exc:
        run(slow, message)
    assert exc.value.type == "SendGridDeliveryUnknown"
    assert row(ledger, message.dedupe_key).status == "uncertain"
    result = run(slow, message, attempt=2)
    (sent,) = sendgrid.messages(message.invoice_id)
    assert result.status == "sent" and result.provider_message_id.startswith(sent["message_id"])  # type: ignore[union-attr]
    assert row(ledger, message.dedupe_key).status == "sent"


def test_a_timeout_before_sendgrid_took_it_is_sent_once(
    settings: Settings, ledger: Ledger, message: SendEmailInput, sendgrid: SendGridControl
) -> None:
    slow = activities(settings, ledger, timeout=0.3)
    sendgrid.delay(1.0, to_contains="ada@")  # SendGrid drops it: the client has gone by then
    with pytest.raises(ApplicationError, match="did not answer in time"):
        run(slow, message)
    eventually_sync(
        sendgrid.attempts,
        lambda log: any(a["status"] == 499 and "ada@example.com" in a["recipients"] for a in log),
        what="the stand-in dropping the abandoned request",
    )
    assert sendgrid.messages(message.invoice_id) == []
    assert run(slow, message, attempt=2).status == "sent"
    assert len(sendgrid.messages(message.invoice_id)) == 1
    assert row(ledger, message.dedupe_key).status == "sent"


@pytest.mark.parametrize("status", [403, 404])
def test_without_the_email_activity_api_the_message_stays_uncertain(
    settings: Settings, ledger: Ledger, message: SendEmailInput, feed: SendGridControl, status: int
) -> None:
    eager = activities(settings, ledger)
    feed.activity_feed(available=False, unavailable_status=status)
    crash_after_claim(ledger, message)
    for attempt in (2, 3):
        result = run(eager, message, attempt=attempt)
        assert result.status == "uncertain" and f"not available ({status})" in (result.detail or "")
    assert feed.messages(message.invoice_id) == []
    stored = row(ledger, message.dedupe_key)
    assert stored.status == "uncertain" and "not re-sent" in (stored.error or "")
    unresolved = NotificationStore(ledger.sessions).unresolved(invoice_id=message.invoice_id)
    assert [n.dedupe_key for n in unresolved] == [message.dedupe_key]


def test_email_activity_api_errors_are_retried_before_deciding(
    settings: Settings, ledger: Ledger, message: SendEmailInput, sendgrid: SendGridControl
) -> None:
    eager = activities(settings, ledger)
    crash_after_claim(ledger, message)
    sendgrid.fault(503, endpoint="messages", to_contains=message.dedupe_key)
    with pytest.raises(SendGridRetryableError, match="Email Activity API answered 503"):
        run(eager, message, attempt=2)
    assert row(ledger, message.dedupe_key).status == "uncertain"
    assert sendgrid.messages(message.invoice_id) == []
    assert run(eager, message, attempt=3).status == "sent"
    assert len(sendgrid.messages(message.invoice_id)) == 1
