"""End to end: the Stripe stand-in delivers real signed webhooks to the app over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, Outcome
from models.ledger import Attempt, Case, CaseOutcome
from models.settings import Settings
from models.store import Ledger
from standins.server import BackgroundServer
from starter import cases
from starter.app import create_app
from tests.deadline import eventually
from tests.standin_control import SendGridControl, StripeControl
from tests.starter.payloads import SECRET
from tests.starter.webhook_cases_helpers import running, visible
from tests.starter.webhook_client import event_row
from tests.workflows.helpers import INSUFFICIENT, ledger_rows


@pytest.fixture
def standin_webhooks(stripe_control: StripeControl) -> Iterator[Callable[[str], None]]:
    def point_at(url: str) -> None:
        stripe_control.http.post(
            "/webhooks", json={"url": url, "secret": SECRET}
        ).raise_for_status()

    yield point_at
    # The stand-in is shared by the whole session: stop delivering to our server.
    stripe_control.http.post("/webhooks", json={"url": None, "secret": None}).raise_for_status()


async def test_end_to_end_failed_invoice_to_recovery_through_signed_webhooks(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    ledger: Ledger,
    run_worker: Any,
    stripe_control: StripeControl,
    standin_webhooks: Callable[[str], None],
) -> None:
    client = dev_env.client
    sendgrid = SendGridControl(settings)
    async with run_worker(client) as task_queue:
        app_settings = settings.model_copy(
            update={
                "stripe_webhook_secret": SECRET,
                "dunning_task_queue": task_queue,
                # The server's own client, connected lazily in its own event loop.
                "temporal_address": client.service_client.config.target_host,
                "temporal_namespace": client.namespace,
            }
        )
        with BackgroundServer(create_app(app_settings, ledger=ledger)) as server:
            standin_webhooks(f"{server.url}/webhooks/stripe")
            case = stripe_control.failed_invoice(INSUFFICIENT, amount=1200, currency="eur")
            handle = cases.case_handle(client, case.invoice)

            async def opened() -> bool:
                row = event_row(ledger, case.event["id"])
                return row is not None and row.status == "done"

            await eventually(opened)
            await visible(client, running("CustomerId", case.customer), 1)
            await eventually(  # the worker runs in this event loop: poll without blocking it
                lambda: asyncio.to_thread(ledger_rows, ledger, Case, case.invoice), what="case row"
            )
            # The customer attaches a new card (payment_method.attached): the retry it
            # triggers charges that card, even before it becomes their default.
            visa = stripe_control.sdk.v1.payment_methods.attach(
                "pm_card_visa", params={"customer": case.customer}
            )
            result = await asyncio.wait_for(handle.result(), 60)
            # Making it the default afterwards (customer.updated) finds no running case, once
            # visibility (eventually consistent) no longer lists the case as running. Until
            # then the router signals the listed case with the card's request id, which
            # Temporal may answer as a duplicate of the attach's signal: a no-op that the
            # event's action would still name "signalled".
            await visible(client, running("CustomerId", case.customer), 0)
            stripe_control.sdk.v1.customers.update(
                case.customer, params={"invoice_settings": {"default_payment_method": visa.id}}
            )

            async def all_delivered() -> bool:
                log = stripe_control.http.get("/events").raise_for_status().json()
                mine = [e for e in log["events"] if _concerns(e, case.customer, case.invoice)]
                done = {d["event"] for d in log["deliveries"] if d["succeeded"]}
                return all(e["id"] in done for e in mine)

            await eventually(all_delivered)

    assert (result.status, result.outcome, result.amount_recovered) == (
        CaseStatus.RECOVERED,
        Outcome.RECOVERED,
        1200,
    )
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert [(a.trigger, a.outcome) for a in attempts] == [("payment_method_updated", "succeeded")]
    charges = stripe_control.charges(case.invoice)
    assert charges["count"] == 2  # Stripe's own attempt + our retry on the new card
    assert charges["attempts"][1]["payment_method"] == visa.id
    (opened_case,) = ledger_rows(ledger, Case, case.invoice)
    assert (opened_case.customer_id, opened_case.subscription_id) == (
        case.customer,
        case.subscription,
    )
    assert opened_case.stripe_event_id == case.event["id"]
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert (outcome.outcome, outcome.amount_recovered) == ("recovered", 1200)
    keys = [m["custom_args"]["dunning_dedupe_key"] for m in sendgrid.messages(case.invoice)]
    assert keys[-1] == f"dunning-{case.invoice}:recovered"

    log = stripe_control.http.get("/events").raise_for_status().json()
    mine = [e for e in log["events"] if _concerns(e, case.customer, case.invoice)]
    deliveries = [d for d in log["deliveries"] if d["event"] in {e["id"] for e in mine}]
    assert deliveries and all(d["status_code"] == 200 for d in deliveries)
    rows = {e["id"]: event_row(ledger, e["id"]) for e in mine}
    assert all(row is not None and row.status in ("done", "ignored") for row in rows.values())
    wid = f"dunning-{case.invoice}"
    actions = {(e["type"], rows[e["id"]].action) for e in mine}  # type: ignore[union-attr]
    assert ("invoice.payment_failed", f"started {wid}") in actions
    # The case had already recovered: the later default-card change signals nothing.
    updated = [action for kind, action in actions if kind == "customer.updated"]
    assert updated and not any(a and a.startswith("signalled") for a in updated)
    assert (
        "payment_method.attached",
        f"signalled payment_method_updated to {wid}",
    ) in actions


def _concerns(evt: dict[str, Any], customer: str, invoice: str) -> bool:
    obj = evt["data"]["object"]
    return obj.get("id") in (customer, invoice) or obj.get("customer") == customer
