"""Exactly-once effect of webhooks: concurrent copies, abandoned events, Temporal outages."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, Outcome
from models.ledger import Attempt, Case, CaseOutcome, utcnow
from models.settings import Settings
from models.store import Ledger
from models.stripe_events import StripeEvent
from standins.server import free_port
from starter import cases
from starter.app import create_app
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.starter import payloads as pl
from tests.starter.payloads import API_2020, API_ENDIVE
from tests.starter.webhook_cases_helpers import idle_case, later_signals, received
from tests.starter.webhook_client import Api, applied, event_row
from tests.workflows.helpers import INSUFFICIENT, ledger_rows


async def test_twenty_concurrent_copies_start_one_case_once(
    api: Api, ledger: Ledger, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    invoice = pl.invoice(API_2020, subscription=pl.new_id("sub"))
    evt = pl.event("invoice.payment_failed", invoice, API_2020)
    idle_cases.append((dev_env.client, f"dunning-{invoice['id']}"))

    responses = await asyncio.gather(*(api.deliver(evt) for _ in range(20)))

    assert [r.status_code for r in responses] == [200] * 20
    bodies = [r.json() for r in responses]
    assert sum(1 for b in bodies if not b.get("duplicate")) == 1
    assert all(b["status"] == "done" for b in bodies)
    # Every signal-with-start leaves a signal in history: one signal, one effect.
    assert [name for name, _ in await received(dev_env.client, invoice["id"])] == ["payment_failed"]
    row = event_row(ledger, evt["id"])
    assert row is not None and (row.status, row.deliveries) == ("done", 20)


async def test_twenty_concurrent_copies_signal_once(
    api: Api, ledger: Ledger, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    case = await idle_case(dev_env.client, api.app.state.settings.dunning_task_queue, idle_cases)
    evt = pl.event("invoice.payment_succeeded", pl.invoice(id=case.invoice_id, status="paid"))

    responses = await asyncio.gather(*(api.deliver(evt) for _ in range(20)))
    later = await api.deliver(evt)  # Stripe redelivers after a lost 2xx

    assert [r.status_code for r in responses] == [200] * 20
    assert later.status_code == 200 and later.json()["duplicate"] is True
    assert later.json()["action"] == f"signalled payment_succeeded to dunning-{case.invoice_id}"
    assert [name for name, _ in await later_signals(dev_env.client, case.invoice_id)] == [
        "payment_succeeded"
    ]
    row = event_row(ledger, evt["id"])
    assert row is not None and row.deliveries == 21


async def test_an_abandoned_event_is_applied_by_the_sweep(api: Api, ledger: Ledger) -> None:
    """A process that died while applying an event leaves it `processing`: once its lease is
    over, the relay's sweep applies it; a copy arriving meanwhile is a duplicate at once."""
    evt = pl.event("invoice.paid", pl.invoice(status="paid"))
    with ledger.sessions.begin() as session:
        session.add(
            StripeEvent(
                event_id=evt["id"],
                type="invoice.paid",
                event_created=utcnow(),
                status="processing",
                claimed_at=utcnow(),
                next_try_at=utcnow(),
                payload=pl.body_of(evt).decode(),
                deliveries=1,
                livemode=False,
            )
        )

    copy = await api.deliver(evt, settle=False)
    assert (copy.status_code, copy.json()["duplicate"]) == (200, True)
    assert await api.app.state.relay.sweep_once() >= 0
    assert event_row(ledger, evt["id"]).status == "processing"  # type: ignore[union-attr]  # live lease
    with ledger.sessions.begin() as session:
        session.execute(
            update(StripeEvent)
            .where(StripeEvent.event_id == evt["id"])
            .values(claimed_at=utcnow() - timedelta(minutes=3))
        )
    api.app.state.relay.start()

    row = await applied(ledger, evt["id"])
    assert (row.status, row.deliveries, row.payload) == ("done", 2, None)
    assert row.action is not None and row.action.startswith("no running case")


async def test_temporal_down_answers_at_once_and_nothing_is_lost(
    dev_env: WorkflowEnvironment,
    api_settings: Settings,
    ledger: Ledger,
    idle_cases: list[tuple[Client, str]],
) -> None:
    proxy = pl.TcpProxy(dev_env.client.service_client.config.target_host, free_port())
    settings = api_settings.model_copy(update={"temporal_address": proxy.address})
    # No client given: the app connects lazily, and Temporal is down from the start.
    api = Api(create_app(settings, ledger=ledger, temporal_timeout=2.0), ledger)
    invoice = pl.invoice(API_ENDIVE)
    failed = pl.event("invoice.payment_failed", invoice)
    paid = pl.event("invoice.paid", {**invoice, "status": "paid", "amount_paid": 2500})
    idle_cases.append((dev_env.client, f"dunning-{invoice['id']}"))
    try:
        started = time.monotonic()
        down = await api.deliver(failed, settle=False)
        down_seconds = time.monotonic() - started
        row_down = await eventually(
            lambda: asyncio.to_thread(event_row, ledger, failed["id"]),
            lambda row: row is not None and row.status == "failed",
            what="the relay finding Temporal down",
        )
        await proxy.start()
        # The sweep retries with backoff until Temporal answers: no redelivery needed.
        await applied(ledger, failed["id"], until=("done",))

        await proxy.stop()  # now an outage of an already connected client
        started = time.monotonic()
        cut = await api.deliver(paid, settle=False)
        cut_seconds = time.monotonic() - started
        await proxy.start()
        await applied(ledger, paid["id"], until=("done",))
    finally:
        await proxy.stop()
        await api.app.state.relay.close()

    for response in (down, cut):
        assert (response.status_code, response.json()["status"]) == (200, "queued")
    assert down_seconds < 2 and cut_seconds < 2  # the answer never waits for Temporal
    assert row_down is not None and "temporal unavailable" in (row_down.error or "")
    assert [name for name, _ in await received(dev_env.client, invoice["id"])] == [
        "payment_failed",
        "payment_succeeded",
    ]
    for evt in (failed, paid):
        row = event_row(ledger, evt["id"])
        assert row is not None and (row.status, row.deliveries, row.error) == ("done", 1, None)
        assert row.payload is None  # customer data kept only until applied


async def test_unexpected_temporal_error_is_kept_and_retried_later(
    time_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger
) -> None:
    # The time-skipping server has no visibility API: the customer lookup is refused.
    api = Api(create_app(api_settings, client=time_env.client, ledger=ledger), ledger)
    evt = pl.event("payment_method.attached", pl.payment_method(pl.new_id("cus")))

    response = await api.deliver(evt)
    await api.app.state.relay.close()

    assert (response.status_code, response.json()["status"]) == (200, "failed")
    row = event_row(ledger, evt["id"])
    assert row is not None and (row.status, row.error) == ("failed", "error: RPCError")
    assert row.payload is not None and row.next_try_at is not None  # due again later


async def test_paid_before_failed_ends_already_paid(
    time_env: WorkflowEnvironment,
    api_settings: Settings,
    ledger: Ledger,
    run_worker: Any,
    stripe_control: StripeControl,
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, amount=3100)
    # The customer pays on the hosted invoice page with another card.
    stripe_control.sdk.v1.invoices.pay(case.invoice, params={"payment_method": "pm_card_visa"})
    events = stripe_control.http.get("/events").raise_for_status().json()["events"]
    mine = {
        e["type"]: e
        for e in events
        if e["data"]["object"].get("id") == case.invoice and e["type"].startswith("invoice.")
    }
    async with run_worker(time_env.client) as task_queue:
        settings = api_settings.model_copy(update={"dunning_task_queue": task_queue})
        api = Api(create_app(settings, client=time_env.client, ledger=ledger), ledger)
        # Stripe does not guarantee order: the payment's events arrive first.
        paid = await api.deliver(mine["invoice.paid"])
        succeeded = await api.deliver(mine["invoice.payment_succeeded"])
        failed = await api.deliver(case.event)
        result = await cases.case_handle(time_env.client, case.invoice).result()
        late = await api.deliver(
            pl.event("invoice.payment_failed", mine["invoice.paid"]["data"]["object"])
        )

    no_case = f"no running case (dunning-{case.invoice})"
    assert paid.json()["action"] == succeeded.json()["action"] == no_case
    assert failed.status_code == 200
    assert (result.status, result.outcome, result.attempts) == (
        CaseStatus.RECOVERED,
        Outcome.ALREADY_PAID,
        0,
    )
    # A failure event after the case ended never reopens it (nor charges again).
    assert late.json()["action"] == f"case dunning-{case.invoice} already closed; not reopened"
    assert stripe_control.charge_count(case.invoice) == 2  # Stripe's attempt + the customer's
    assert ledger_rows(ledger, Attempt, case.invoice) == []
    (opened,) = ledger_rows(ledger, Case, case.invoice)
    assert (opened.stripe_event_id, opened.amount_due) == (case.event["id"], 3100)
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert outcome.outcome == "already_paid"
    for evt, action in [
        (mine["invoice.paid"], no_case),
        (mine["invoice.payment_succeeded"], no_case),
    ]:
        row = event_row(ledger, evt["id"])
        assert row is not None and (row.status, row.action) == ("done", action)
