"""The claim sweep: a message claim left by a send that died, in a case that will never come back
to it, is settled from the provider's records (models/claim_sweep.py, activities/claim_lookups.py).

The providers are the SendGrid and Twilio stand-ins; Temporal is the dev server. A ledger case
whose workflow id Temporal does not know counts as closed; a running one is started on a task
queue no worker polls, so it stays running.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.claim_lookups import ClaimLookups
from activities.email import MIN_UNLISTED_AGE, EmailActivities
from activities.sms import SmsActivities
from models.activities import NotificationInput, SendEmailInput, channel_key
from models.claim_sweep import WITHDRAWN, Lookup, Swept, sweep_claims
from models.dunning import DunningInput
from models.ledger import Notification, utcnow
from models.notification_store import NEEDS_A_LOOK, UNSETTLED_AFTER, NotificationStore
from models.store import Ledger
from tests.activities.test_sms import sms, text  # noqa: F401  (fixtures)
from tests.standin_control import SendGridControl
from workflows.dunning import DunningWorkflow

OLD = timedelta(minutes=11)


def row(ledger: Ledger, key: str) -> Notification:
    with ledger.sessions() as session:
        return session.query(Notification).filter_by(dedupe_key=key).one()


def died_mid_send(ledger: Ledger, key: str, age: timedelta = OLD) -> None:
    """The attempt's claim, as a worker killed before it settled it leaves it."""
    with ledger.sessions.begin() as session:
        session.execute(
            update(Notification)
            .where(Notification.dedupe_key == key)
            .values(status="claimed", provider_message_id=None, created_at=utcnow() - age)
        )


def claimed_only(ledger: Ledger, input: SendEmailInput, age: timedelta = OLD) -> None:
    """A claim whose attempt died before SendGrid took the message."""
    NotificationStore(ledger.sessions).claim(
        attempt=1,
        invoice_id=input.invoice_id,
        dedupe_key=input.dedupe_key,
        template="reminder",
        to_address=input.to_email,
    )
    died_mid_send(ledger, input.dedupe_key, age)


def send(activities: EmailActivities, input: SendEmailInput) -> str:
    result = ActivityEnvironment().run(activities.send_email, input)
    assert result.status == "sent" and result.provider_message_id
    return result.provider_message_id


async def sweep(
    client: Client,
    ledger: Ledger,
    lookups: dict[str, Lookup],
    invoice: str,
    older_than: timedelta = UNSETTLED_AFTER,
) -> list[Swept]:
    return await sweep_claims(client, ledger, lookups, older_than, invoices=[invoice])


def email_only(email: EmailActivities) -> ClaimLookups:
    return ClaimLookups(email)


@pytest.fixture
def feed(sendgrid: SendGridControl) -> Iterator[SendGridControl]:
    yield sendgrid
    sendgrid.activity_feed(available=True, lag_seconds=0)


@pytest.fixture
def client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client


async def hold(client: Client, workflow_id: str) -> None:
    input = DunningInput(invoice_id="in_x", customer_id="cus_x", amount_due=1, currency="eur")
    await client.start_workflow(
        DunningWorkflow.run, input, id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}"
    )


async def test_a_closed_cases_claim_is_settled_from_sendgrid(
    client: Client, email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    provider_id = send(email_activities, message)
    died_mid_send(ledger, message.dedupe_key)  # SendGrid took it; the settle never happened
    lookups = email_only(email_activities).by_channel()

    swept = await sweep(client, ledger, lookups, message.invoice_id)

    assert Swept(message.dedupe_key, "sent") in swept
    stored = row(ledger, message.dedupe_key)
    # The Email Activity API's msg_id: the X-Message-Id the send got, with SendGrid's suffix.
    assert stored.status == "sent" and (stored.provider_message_id or "").startswith(provider_id)
    assert stored.sent_at is not None
    assert await sweep(client, ledger, lookups, message.invoice_id) == []  # settled once


async def test_a_message_sendgrid_never_had_is_withdrawn_once_listing_is_trusted(
    client: Client,
    email_activities: EmailActivities,
    message: SendEmailInput,
    ledger: Ledger,
    sendgrid: SendGridControl,
) -> None:
    lookups = email_only(email_activities).by_channel()
    claimed_only(ledger, message, age=MIN_UNLISTED_AGE - timedelta(seconds=30))
    # Younger than SendGrid's listing delay: it may still appear; and not stale yet.
    await sweep(client, ledger, lookups, message.invoice_id, older_than=timedelta(0))
    assert row(ledger, message.dedupe_key).status == "claimed"

    died_mid_send(ledger, message.dedupe_key)
    await sweep(client, ledger, lookups, message.invoice_id)

    stored = row(ledger, message.dedupe_key)
    assert (stored.status, stored.error) == ("withdrawn", WITHDRAWN)
    assert sendgrid.messages(message.invoice_id) == []  # and the sweep never sends


async def test_a_running_cases_claim_is_left_to_the_case(
    client: Client, email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    claimed_only(ledger, message)
    workflow_id = f"dunning-{message.invoice_id}"
    await hold(client, workflow_id)
    try:
        await sweep(client, ledger, email_only(email_activities).by_channel(), message.invoice_id)
        assert row(ledger, message.dedupe_key).status == "claimed"
    finally:
        await client.get_workflow_handle(workflow_id).terminate(reason="test over")
    await sweep(client, ledger, email_only(email_activities).by_channel(), message.invoice_id)
    assert row(ledger, message.dedupe_key).status == "withdrawn"


async def test_without_the_email_activity_api_the_claim_becomes_uncertain(
    client: Client,
    email_activities: EmailActivities,
    message: SendEmailInput,
    ledger: Ledger,
    feed: SendGridControl,
) -> None:
    claimed_only(ledger, message)
    feed.activity_feed(available=False, unavailable_status=404)

    await sweep(client, ledger, email_only(email_activities).by_channel(), message.invoice_id)

    stored = row(ledger, message.dedupe_key)
    assert stored.status == "uncertain" and "not available (404)" in (stored.error or "")
    unresolved = NotificationStore(ledger.sessions).unresolved(invoice_id=message.invoice_id)
    assert [n.dedupe_key for n in unresolved] == [message.dedupe_key]


async def test_a_timed_out_send_left_uncertain_is_settled_too(
    client: Client, email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    # The attempt timed out after SendGrid took the message, and the case never came back.
    provider_id = send(email_activities, message)
    died_mid_send(ledger, message.dedupe_key)
    store = NotificationStore(ledger.sessions)
    store.settle(message.dedupe_key, "uncertain", error="timeout: timed out")
    lookups = email_only(email_activities).by_channel()

    assert await sweep(client, ledger, lookups, message.invoice_id) == [
        Swept(message.dedupe_key, "sent")
    ]
    assert (row(ledger, message.dedupe_key).provider_message_id or "").startswith(provider_id)

    # One that waits for a person (SendGrid could not be asked) is not asked again and again.
    died_mid_send(ledger, message.dedupe_key)
    store.settle(message.dedupe_key, "uncertain", error=f"feed unavailable; {NEEDS_A_LOOK}")
    assert await sweep(client, ledger, lookups, message.invoice_id) == []
    assert row(ledger, message.dedupe_key).status == "uncertain"


async def test_a_send_refused_with_a_5xx_in_a_case_that_then_ended_is_withdrawn(
    client: Client, email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    # SendGrid answered 503 and the case was paid during the backoff: no attempt comes back.
    claimed_only(ledger, message)
    store = NotificationStore(ledger.sessions)
    store.settle(message.dedupe_key, "failed_retryable", error="503: service unavailable")
    lookups = email_only(email_activities).by_channel()

    assert await sweep(client, ledger, lookups, message.invoice_id) == [
        Swept(message.dedupe_key, "withdrawn")
    ]
    assert row(ledger, message.dedupe_key).error == WITHDRAWN


async def test_an_attempt_that_settled_first_wins(
    client: Client, email_activities: EmailActivities, message: SendEmailInput, ledger: Ledger
) -> None:
    claimed_only(ledger, message)
    seen = row(ledger, message.dedupe_key)
    store = NotificationStore(ledger.sessions)
    store.settle(message.dedupe_key, "sent", provider_message_id="sg_attempt")
    assert not store.settle_claim(seen, "withdrawn")
    assert row(ledger, message.dedupe_key).status == "sent"


async def test_a_text_is_settled_from_twilios_messages(
    client: Client,
    email_activities: EmailActivities,
    sms: SmsActivities,  # noqa: F811
    text: NotificationInput,  # noqa: F811
    ledger: Ledger,
) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=1)
    sent = env.run(sms.send_sms, text)
    key = channel_key(text.dedupe_key, "sms")
    died_mid_send(ledger, key)
    lookups = ClaimLookups(email_activities, sms).by_channel()

    await sweep(client, ledger, lookups, text.invoice_id)
    stored = row(ledger, key)
    assert (stored.status, stored.provider_message_id) == ("sent", sent.provider_message_id)

    # The same claim with a body Twilio never sent: withdrawn.
    with ledger.sessions.begin() as session:
        session.execute(
            update(Notification).where(Notification.dedupe_key == key).values(body_text="other")
        )
    died_mid_send(ledger, key)
    await sweep(client, ledger, lookups, text.invoice_id)
    assert row(ledger, key).status == "withdrawn"
