"""What the payment page's tests share: the page's settings, an app on the ASGI transport,
links, the forms' nonces, and cases (closed in the ledger, or running on a live worker)."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError

from models.pay_links import make_token
from models.settings import Settings
from models.store import Ledger
from starter.app import create_app
from starter.cases import start_case
from starter.support.service import case_status
from tests.deadline import eventually
from tests.standin_control import FailedInvoice, StripeControl
from tests.workflows.helpers import INSUFFICIENT

SECRET = "k1:pay-page-test-secret"


def page_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"dunning_link_secret": SECRET, "dunning_public_url": "http://pay.test"}
    )


def app_for(settings: Settings, ledger: Ledger, client: Client | None) -> FastAPI:
    return create_app(settings, client=client, ledger=ledger, temporal_timeout=3)


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pay.test")


def token_for(settings: Settings, invoice: str, days: int = 60) -> str:
    return make_token(settings, invoice, datetime.now(UTC) + timedelta(days=days))


def nonce(html: str) -> str:
    found = re.search(r'name="nonce" value="([0-9a-f]{32}\.[0-9a-f]{64})"', html)
    assert found, "no form nonce in the page"
    return found.group(1)


def seed_closed(ledger: Ledger, outcome: str) -> str:
    invoice = f"in_{uuid.uuid4().hex[:12]}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_seed",
        amount_due=1500, currency="eur", policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    ledger.record_outcome(invoice, outcome, "eur", 1, 1500, 1, datetime.now(UTC))
    return invoice


@asynccontextmanager
async def running_case(
    client: Client, run_worker: Any, settings: Settings
) -> AsyncIterator[tuple[FailedInvoice, str]]:
    """A running case on a live worker (its customer prefers Spanish), and its link's token."""
    case = StripeControl(settings).failed_invoice(INSUFFICIENT, preferred_locales=["es-ES"])
    async with run_worker(client) as task_queue:
        handle = await start_case(client, case.dunning_input(), task_queue)
        await eventually(
            lambda: case_status(client, case.invoice),
            lambda s: s.next_action_at is not None,
            what="the case scheduled its next step",
        )
        yield case, token_for(settings, case.invoice)
        with contextlib.suppress(RPCError):  # a case the test closed is already over
            await handle.terminate("test over")
