"""The email activity sends through the SendGrid stand-in, whose signed Event Webhook reaches the
API over HTTP (as `dunning dev` wires them): the ledger hears delivered, bounce and unsubscribe,
and the case emailed at the unsubscribed address is told."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.email import EmailActivities, make_sendgrid_client
from models.activities import SendEmailInput
from models.channel_store import ChannelStore
from models.ledger import Notification
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from standins.sendgrid_api import create_app as create_sendgrid_app
from standins.sendgrid_api.events import EventWebhookConfig
from standins.server import BackgroundServer, free_port
from starter.app import create_app
from tests.deadline import eventually, eventually_sync
from tests.starter.webhook_cases_helpers import idle_case, later_signals


@pytest.fixture
def wired(
    settings: Settings, ledger: Ledger, dev_env: WorkflowEnvironment
) -> Iterator[EmailActivities]:
    """The API and a stand-in posting to it; email activities sending through that stand-in."""
    api_port = free_port()
    events = EventWebhookConfig(url=f"http://127.0.0.1:{api_port}/webhooks/sendgrid")
    standin = create_sendgrid_app(events=events)
    api_settings = settings.model_copy(
        update={
            "sendgrid_webhook_public_key": standin.state.events.public_key,
            "temporal_address": dev_env.client.service_client.config.target_host,
        }
    )
    with (
        BackgroundServer(create_app(api_settings, ledger=ledger), port=api_port),
        BackgroundServer(standin) as sendgrid,
    ):
        client = make_sendgrid_client(
            settings.model_copy(update={"sendgrid_api_host": sendgrid.url})
        )
        yield EmailActivities(client, NotificationStore(ledger.sessions), "billing@example.com")
    standin.state.events.stop()


def send(activities: EmailActivities, invoice: str, to: str) -> str:
    message = SendEmailInput(
        invoice_id=invoice, dedupe_key=f"dunning-{invoice}:step:1:{to}", template="payment_failed",
        level="friendly", step=1, to_email=to, customer_id="cus_flow", customer_name="Ada",
        amount_due=1200, currency="eur", hosted_invoice_url="https://invoice.stripe.com/i/test",
    )  # fmt: skip
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=1)
    return env.run(activities.send_email, message).dedupe_key


def statuses(ledger: Ledger, keys: list[str]) -> list[tuple[str, str | None]]:
    with ledger.sessions() as session:
        rows = {r.dedupe_key: r for r in session.query(Notification).filter(
            Notification.dedupe_key.in_(keys))}  # fmt: skip
        return [(rows[k].status, rows[k].error) for k in keys]


async def test_the_standins_events_reach_the_ledger_and_the_case(
    wired: EmailActivities,
    ledger: Ledger,
    dev_env: WorkflowEnvironment,
    idle_cases: list[tuple[Client, str]],
) -> None:
    queue = f"sendgrid-flow-{uuid.uuid4().hex[:8]}"
    case = await idle_case(dev_env.client, queue, idle_cases)
    ledger.open_case(
        invoice_id=case.invoice_id, workflow_id=f"dunning-{case.invoice_id}",
        customer_id=case.customer_id, amount_due=1200, currency="eur", policy="default",
        opened_at=datetime.now(UTC),
    )  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    recipients = [f"ana+{tag}@example.com", f"bounce+{tag}@example.com"]
    recipients.append(f"unsubscribe+{tag}@example.com")
    keys = [send(wired, case.invoice_id, to) for to in recipients]

    found = eventually_sync(
        lambda: statuses(ledger, keys),
        lambda s: [status for status, _ in s] == ["delivered", "failed", "delivered"],
        what="delivered, failed, delivered",
    )
    assert (found[1][1] or "").startswith("sendgrid bounce (bounce): 550 5.1.1")
    store = ChannelStore(ledger.sessions)
    eventually_sync(lambda: store.is_opted_out("email", recipients[2]), what="opted out")
    assert not store.is_opted_out("email", recipients[0])
    told = await eventually(lambda: later_signals(dev_env.client, case.invoice_id), what="told")
    assert told == [
        (
            "channel_opt_out",
            {"channel": "email", "opted_out": True, "source": "SendGrid unsubscribe"},
        )
    ]
