"""One fact, one signal: what Stripe reports twice enters a case's history once (issue 8, 5).

Stripe sends `invoice.paid` and `invoice.payment_succeeded` for one payment, and
`payment_method.attached`, `setup_intent.succeeded` and `customer.updated` for one new card;
each signal carries a request id naming the fact, and Temporal drops a repeat to the same run.
Events caused by the case's own charge attempts are not signalled at all.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.starter import payloads as pl
from tests.starter.payloads import API_ENDIVE
from tests.starter.webhook_cases_helpers import (
    idle_case,
    later_signals,
    method_event,
    running,
    visible,
)
from tests.starter.webhook_client import Api


async def test_one_payment_reported_twice_is_one_signal(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    queue = api.app.state.settings.dunning_task_queue
    case = await idle_case(dev_env.client, queue, idle_cases)
    invoice = pl.invoice(
        API_ENDIVE, id=case.invoice_id, customer=case.customer_id, amount_paid=1000, status="paid"
    )
    paid = pl.event("invoice.paid", invoice, API_ENDIVE)
    succeeded = pl.event("invoice.payment_succeeded", invoice, API_ENDIVE)

    for evt in (paid, succeeded, paid):  # the last one: a redelivery
        assert (await api.deliver(evt)).status_code == 200

    assert await later_signals(dev_env.client, case.invoice_id) == [
        ("payment_succeeded", {"stripe_event_id": paid["id"], "amount_paid": 1000})
    ]


async def test_one_new_card_reported_three_ways_is_one_signal(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    client, queue = dev_env.client, api.app.state.settings.dunning_task_queue
    customer = pl.new_id("cus")
    case = await idle_case(client, queue, idle_cases, customer_id=customer)
    await visible(client, running("CustomerId", customer), 1)
    card, other = pl.new_id("pm"), pl.new_id("pm")
    kinds = ["payment_method.attached", "setup_intent.succeeded", "customer.updated"]
    events = [method_event(kind, customer, card, API_ENDIVE) for kind in kinds]
    events.append(method_event("customer.updated", customer, other, API_ENDIVE))

    for evt in events:
        assert (await api.deliver(evt)).status_code == 200

    assert await later_signals(client, case.invoice_id) == [
        ("payment_method_updated", {"stripe_event_id": events[0]["id"], "payment_method_id": card}),
        (
            "payment_method_updated",
            {"stripe_event_id": events[3]["id"], "payment_method_id": other},
        ),
    ]


async def test_events_of_the_cases_own_charges_are_not_signalled(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    queue = api.app.state.settings.dunning_task_queue
    case = await idle_case(dev_env.client, queue, idle_cases)
    invoice = pl.invoice(API_ENDIVE, id=case.invoice_id, customer=case.customer_id)
    own_key = f"dunning-{case.invoice_id}:charge:2"
    answers: list[dict[str, Any]] = []
    for kind in ("invoice.payment_failed", "invoice.paid"):
        evt = pl.event(kind, invoice, API_ENDIVE)
        evt["request"] = {"id": "req_own", "idempotency_key": own_key}
        answers.append((await api.deliver(evt)).json())

    own = f"own event: caused by dunning-{case.invoice_id} itself; not signalled"
    assert [(a["status"], a["action"]) for a in answers] == [("ignored", own)] * 2
    assert await later_signals(dev_env.client, case.invoice_id) == []


async def test_a_cases_own_cancellation_stops_only_the_subscriptions_other_cases(
    api: Api,
    dev_env: WorkflowEnvironment,
    idle_cases: list[tuple[Client, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, queue = dev_env.client, api.app.state.settings.dunning_task_queue
    sub = pl.new_id("sub")
    canceling = await idle_case(client, queue, idle_cases, subscription_id=sub)
    older = await idle_case(client, queue, idle_cases, subscription_id=sub)
    await visible(client, running("SubscriptionId", sub), 2)
    evt = pl.event(
        "customer.subscription.deleted",
        pl.subscription(API_ENDIVE, id=sub, latest_invoice=canceling.invoice_id),
        API_ENDIVE,
    )
    evt["request"] = {"id": "req_f", "idempotency_key": f"dunning-{canceling.invoice_id}:final"}

    with caplog.at_level(logging.DEBUG, logger="dunning.webhooks"):
        assert (await api.deliver(evt)).status_code == 200

    assert await later_signals(client, canceling.invoice_id) == []
    assert [name for name, _ in await later_signals(client, older.invoice_id)] == ["stop"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
