"""Helpers of the pre-dunning tests: subscriptions whose card expires before renewal, a worker
with the pre-dunning workflows and activities, and what SendGrid received for a warning."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.card_expiry import CardExpiryActivities
from activities.email import make_sendgrid_client
from models.predunning import ExpiringCard, predunning_workflow_id
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from workflows.card_expiry_scan import CardExpiryScanWorkflow
from workflows.predunning import PreDunningWorkflow

DAY = 86400
UPDATE_URL = "https://billing.example.com/account/{customer}/card"


@dataclass
class Expiring:
    customer: str
    subscription: str
    payment_method: str
    exp_month: int
    exp_year: int
    renews_at: int

    @property
    def workflow_id(self) -> str:
        return predunning_workflow_id(self.payment_method, self.exp_year, self.exp_month)

    def card(self) -> ExpiringCard:
        return ExpiringCard(
            customer_id=self.customer,
            subscription_id=self.subscription,
            payment_method_id=self.payment_method,
            exp_month=self.exp_month,
            exp_year=self.exp_year,
            renews_at=datetime.fromtimestamp(self.renews_at, UTC),
        )


def expiring(settings: Settings, renews_in: float = 10 * DAY, **spec: Any) -> Expiring:
    """A subscription renewing in `renews_in` seconds whose card has expired by then."""
    renews_at = int(time.time() + renews_in)
    last = datetime.fromtimestamp(renews_at - 40 * DAY, UTC)
    body = {"exp_month": last.month, "exp_year": last.year, "renews_at": renews_at, **spec}
    response = httpx.post(
        f"{settings.stripe_api_base}/_standin/scenarios/expiring_subscription", json=body
    )
    made = response.raise_for_status().json()
    return Expiring(
        made["customer"],
        made["subscription"],
        made["payment_method"],
        body["exp_month"],
        body["exp_year"],
        renews_at,
    )


def account_updater(settings: Settings, payment_method: str, exp_year: int) -> None:
    httpx.post(
        f"{settings.stripe_api_base}/_standin/payment_methods/{payment_method}/account_updater",
        json={"exp_month": 12, "exp_year": exp_year},
    ).raise_for_status()


def renew(settings: Settings, subscription: str) -> str:
    url = f"{settings.stripe_api_base}/_standin/subscriptions/{subscription}/renew"
    return str(httpx.post(url).raise_for_status().json()["status"])


def card_expiry_activities(settings: Settings, ledger: Ledger) -> CardExpiryActivities:
    return CardExpiryActivities(
        make_stripe_client(settings),
        ledger.sessions,
        make_sendgrid_client(settings),
        sender="billing@example.com",
        update_payment_url=UPDATE_URL,
    )


@asynccontextmanager
async def predunning_worker(
    client: Client, settings: Settings, ledger: Ledger, executor: ThreadPoolExecutor
) -> AsyncIterator[str]:
    task_queue = f"predunning-test-{uuid.uuid4().hex[:8]}"
    acts = card_expiry_activities(settings, ledger)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[CardExpiryScanWorkflow, PreDunningWorkflow],
        activities=[acts.scan, acts.check_renewal, acts.record, acts.send_email],
        activity_executor=executor,
    ):
        yield task_queue


def warnings_sent(settings: Settings, workflow_id: str) -> list[dict[str, Any]]:
    """What the SendGrid stand-in accepted for one warning workflow."""
    response = httpx.get(
        f"{settings.sendgrid_api_host}/_standin/messages",
        params={"custom_arg": f"predunning:{workflow_id}"},
    )
    body = response.raise_for_status().json()
    return list(body["messages"] if isinstance(body, dict) else body)
