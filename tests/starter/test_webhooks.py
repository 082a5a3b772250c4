"""Fan-out webhooks: subscription and payment-method events reach every case they concern."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.ledger import Case, utcnow
from models.store import Ledger
from tests.starter import payloads as pl
from tests.starter.payloads import API_2020, VERSIONS
from tests.starter.webhook_cases_helpers import (
    case_input,
    idle_case,
    later_signals,
    method_event,
    received,
    running,
    visible,
)
from tests.starter.webhook_client import Api, event_row
from workflows.dunning import DunningWorkflow


@pytest.mark.parametrize("api_version", VERSIONS)
async def test_subscription_deleted_stops_the_subscriptions_cases(
    api: Api,
    dev_env: WorkflowEnvironment,
    ledger: Ledger,
    idle_cases: list[tuple[Client, str]],
    api_version: str,
) -> None:
    client, queue = dev_env.client, api.app.state.settings.dunning_task_queue
    sub, other_sub = pl.new_id("sub"), pl.new_id("sub")
    first = await idle_case(client, queue, idle_cases, subscription_id=sub)
    second = await idle_case(client, queue, idle_cases, subscription_id=sub)
    unrelated = await idle_case(client, queue, idle_cases, subscription_id=other_sub)
    # A case visibility does not list yet (no search attributes), known from the ledger.
    unlisted = case_input(subscription_id=sub)
    await client.start_workflow(
        DunningWorkflow.run, unlisted, id=f"dunning-{unlisted.invoice_id}", task_queue=queue
    )
    idle_cases.append((client, f"dunning-{unlisted.invoice_id}"))
    ledger.open_case(
        invoice_id=unlisted.invoice_id,
        workflow_id=f"dunning-{unlisted.invoice_id}",
        customer_id=unlisted.customer_id,
        subscription_id=sub,
        amount_due=1000,
        currency="eur",
        policy="default",
        opened_at=utcnow(),
    )
    await visible(client, running("SubscriptionId", sub), 2)
    evt = pl.event(
        "customer.subscription.deleted",
        pl.subscription(api_version, id=sub, latest_invoice=second.invoice_id),
        api_version,
    )

    response = await api.deliver(evt)

    assert response.status_code == 200
    stop = ("stop", {"reason": "subscription canceled in Stripe", "by": f"stripe:{evt['id']}"})
    for case in (first, second, unlisted):
        assert await later_signals(client, case.invoice_id) == [stop]
    assert await later_signals(client, unrelated.invoice_id) == []
    expected = sorted(f"dunning-{c.invoice_id}" for c in (first, second, unlisted))
    assert response.json()["action"] == f"signalled stop to {', '.join(expected)}"
    row = event_row(ledger, evt["id"])
    assert row is not None and row.action == response.json()["action"]
    with ledger.sessions.begin() as session:  # leave no open case behind for other tests
        session.execute(
            update(Case).where(Case.invoice_id == unlisted.invoice_id).values(closed_at=utcnow())
        )


async def test_subscription_deleted_reaches_its_latest_invoice_before_visibility(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    client, queue = dev_env.client, api.app.state.settings.dunning_task_queue
    fresh = case_input(subscription_id=pl.new_id("sub"))
    await client.start_workflow(
        DunningWorkflow.run, fresh, id=f"dunning-{fresh.invoice_id}", task_queue=queue
    )
    idle_cases.append((client, f"dunning-{fresh.invoice_id}"))
    sub = pl.subscription(id=fresh.subscription_id, latest_invoice=fresh.invoice_id)

    response = await api.deliver(pl.event("customer.subscription.deleted", sub, API_2020))

    assert response.json()["action"] == f"signalled stop to dunning-{fresh.invoice_id}"
    assert [name for name, _ in await received(client, fresh.invoice_id)] == ["stop"]


async def test_subscription_deleted_without_cases(api: Api) -> None:
    sub = pl.subscription(latest_invoice=pl.new_id("in"))

    response = await api.deliver(pl.event("customer.subscription.deleted", sub))

    assert response.status_code == 200
    assert response.json()["action"] == f"no running case (SubscriptionId {sub['id']})"


@pytest.mark.parametrize("api_version", VERSIONS)
@pytest.mark.parametrize(
    "kind", ["payment_method.attached", "setup_intent.succeeded", "customer.updated"]
)
async def test_new_payment_method_signals_the_customers_cases(
    api: Api,
    dev_env: WorkflowEnvironment,
    ledger: Ledger,
    idle_cases: list[tuple[Client, str]],
    api_version: str,
    kind: str,
) -> None:
    client, queue = dev_env.client, api.app.state.settings.dunning_task_queue
    customer = pl.new_id("cus")
    cases_of_customer = [
        await idle_case(client, queue, idle_cases, customer_id=customer) for _ in range(2)
    ]
    someone_else = await idle_case(client, queue, idle_cases)
    await visible(client, running("CustomerId", customer), 2)
    pm = pl.new_id("pm")
    evt = method_event(kind, customer, pm, api_version)

    response = await api.deliver(evt)

    assert response.status_code == 200, response.text
    for case in cases_of_customer:
        assert await later_signals(client, case.invoice_id) == [
            ("payment_method_updated", {"stripe_event_id": evt["id"], "payment_method_id": pm})
        ]
    assert await later_signals(client, someone_else.invoice_id) == []
    row = event_row(ledger, evt["id"])
    assert row is not None and row.status == "done"
    assert row.action is not None and row.action.startswith("signalled payment_method_updated")


@pytest.mark.parametrize(
    ("evt", "reason"),
    [
        (
            pl.event(
                "customer.updated",
                pl.customer_object("cus_quiet", default_payment_method="pm_same"),
                previous_attributes={"email": "old@example.com"},
            ),
            "default payment method unchanged",
        ),
        (
            pl.event(
                "customer.updated",
                pl.customer_object("cus_quiet", default_payment_method=None),
                API_2020,
                previous_attributes={"invoice_settings": {"default_payment_method": "pm_gone"}},
            ),
            "default payment method removed",
        ),
        (
            pl.event("setup_intent.succeeded", pl.setup_intent(None, "pm_floating")),
            "setup intent has no customer",
        ),
        (
            pl.event("payment_method.attached", pl.payment_method(None), API_2020),
            "payment method has no customer",
        ),
    ],
    ids=["email-change", "default-removed", "setup-without-customer", "pm-without-customer"],
)
async def test_payment_method_events_that_change_nothing_are_ignored(
    api: Api,
    dev_env: WorkflowEnvironment,
    ledger: Ledger,
    idle_cases: list[tuple[Client, str]],
    evt: dict[str, Any],
    reason: str,
) -> None:
    queue = api.app.state.settings.dunning_task_queue
    case = await idle_case(dev_env.client, queue, idle_cases, customer_id="cus_quiet")
    evt = {**evt, "id": pl.new_id("evt")}

    response = await api.deliver(evt)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["action"]) == ("ignored", reason)
    assert await later_signals(dev_env.client, case.invoice_id) == []
    row = event_row(ledger, evt["id"])
    assert row is not None and (row.status, row.action) == ("ignored", reason)
