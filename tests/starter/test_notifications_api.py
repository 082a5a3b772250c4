"""The in-app feed: a customer's notices, newest first, behind the app token; reading one
records the engagement once."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.in_app import InAppActivities
from models.activities import NotificationInput
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from starter.app import create_app

TOKEN = "app-token"


@pytest.fixture
async def http(settings: Settings, ledger: Ledger) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"dunning_app_token": TOKEN, "temporal_address": "127.0.0.1:1"}),
        ledger=ledger,
        temporal_timeout=1,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def notice(ledger: Ledger, template: str, step: int, customer: str | None = None) -> str:
    """An in-app notice sent by the activity (twice: the retry sends nothing) on a new case."""
    tag = uuid.uuid4().hex[:10]
    invoice, customer = f"in_{tag}", customer or f"cus_{tag}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id=customer,
        amount_due=1200, currency="eur", policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    message = NotificationInput(
        invoice_id=invoice, dedupe_key=f"dunning-{invoice}:step:{step}",
        template=template, step=step, channel="in_app", customer_id=customer,
        customer_name="Ada", amount_due=1200, currency="eur",
        hosted_invoice_url="https://invoice.stripe.com/i/test",
    )  # fmt: skip
    env = ActivityEnvironment()
    activities = InAppActivities(NotificationStore(ledger.sessions))
    assert env.run(activities.send_in_app, message).status == "sent"
    retry = dataclasses.replace(env.info, attempt=2)
    env.info = retry
    assert env.run(activities.send_in_app, message).status == "duplicate"
    return customer


async def test_feed_lists_newest_first_and_marks_read_once(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    customer = notice(ledger, "payment_failed", 2)
    answer = await http.get(f"/api/customers/{customer}/notifications")
    assert answer.status_code == 200
    (first,) = answer.json()
    assert first["template"] == "payment_failed" and first["read_at"] is None
    assert "https://invoice.stripe.com/i/test" in first["text"] and first["title"]

    read = await http.post(f"/api/customers/{customer}/notifications/{first['id']}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = await http.post(f"/api/customers/{customer}/notifications/{first['id']}/read")
    assert again.json()["read_at"] == read.json()["read_at"]  # the first read counts

    other = await http.post(f"/api/customers/cus_else/notifications/{first['id']}/read")
    assert other.status_code == 404


async def test_newest_first_and_only_the_customers_own(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    customer = notice(ledger, "reminder", 3)
    notice(ledger, "urgent", 4, customer=customer)  # another case of the same customer
    notice(ledger, "final_notice", 5)  # someone else's
    answer = await http.get(f"/api/customers/{customer}/notifications")
    assert [n["template"] for n in answer.json()] == ["urgent", "reminder"]
    assert (await http.get("/api/customers/cus_nobody/notifications")).json() == []


async def test_the_token_is_required(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/customers/cus_1/notifications", headers={"Authorization": ""})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    wrong = await http.get(
        "/api/customers/cus_1/notifications", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
