"""Invoice events routed to their case: started, signalled, stopped, ignored or refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.store import Ledger
from tests.starter import payloads as pl
from tests.starter.payloads import API_2020, API_DAHLIA, API_ENDIVE, VERSIONS
from tests.starter.webhook_cases_helpers import idle_case, later_signals, received, started_with
from tests.starter.webhook_client import Api, event_row
from workflows import search_attributes as sa


@pytest.mark.parametrize(
    ("api_version", "expanded_customer"),
    [(API_2020, False), (API_ENDIVE, False), (API_DAHLIA, True)],
)
async def test_payment_failed_starts_a_case(
    api: Api,
    ledger: Ledger,
    dev_env: WorkflowEnvironment,
    idle_cases: list[tuple[Client, str]],
    api_version: str,
    expanded_customer: bool,
) -> None:
    customer, sub = pl.new_id("cus"), pl.new_id("sub")
    invoice = pl.invoice(
        api_version,
        customer=pl.customer_object(customer) if expanded_customer else customer,
        subscription=sub,
        amount_due=4900,
        amount_paid=900,  # partly paid: the case dunns what remains
        currency="usd",
    )
    evt = pl.event("invoice.payment_failed", invoice, api_version)
    wid = f"dunning-{invoice['id']}"
    idle_cases.append((dev_env.client, wid))

    response = await api.deliver(evt)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    started = await started_with(dev_env.client, invoice["id"])
    assert started == {
        "invoice_id": invoice["id"],
        "customer_id": customer,
        "subscription_id": sub,
        "amount_due": 4000,
        "currency": "usd",
        "stripe_event_id": evt["id"],
        "failed_at": datetime.fromtimestamp(evt["created"], UTC).isoformat().replace("+00:00", "Z"),
    }
    assert [name for name, _ in await received(dev_env.client, invoice["id"])] == ["payment_failed"]
    description = await dev_env.client.get_workflow_handle(wid).describe()
    assert description.typed_search_attributes.get(sa.CUSTOMER_ID) == customer
    assert description.typed_search_attributes.get(sa.SUBSCRIPTION_ID) == sub
    assert description.task_queue == api.app.state.settings.dunning_task_queue
    row = event_row(ledger, evt["id"])
    assert row is not None and row.status == "done" and row.object_id == invoice["id"]
    assert row.action is not None and wid in row.action


async def test_a_terminated_case_does_not_block_a_new_one_for_its_invoice(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    # (A completed case does block one: test_paid_before_failed_ends_already_paid.)
    invoice = pl.invoice(API_ENDIVE, attempt_count=1)
    wid = f"dunning-{invoice['id']}"
    idle_cases.append((dev_env.client, wid))
    handle = dev_env.client.get_workflow_handle(wid)
    first = await api.deliver(pl.event("invoice.payment_failed", invoice))
    ended = (await handle.describe()).run_id
    await handle.terminate("operator cleaned up")

    again = await api.deliver(pl.event("invoice.payment_failed", {**invoice, "attempt_count": 2}))

    assert first.json()["action"] == again.json()["action"] == f"started {wid}"
    described = await handle.describe()
    assert described.run_id != ended and described.status is not None
    assert described.status.name == "RUNNING"


async def test_second_failure_signals_the_running_case(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    invoice = pl.invoice(API_ENDIVE, attempt_count=1)
    first = pl.event("invoice.payment_failed", invoice)
    again = pl.event("invoice.payment_failed", {**invoice, "attempt_count": 2})
    idle_cases.append((dev_env.client, f"dunning-{invoice['id']}"))
    handle = dev_env.client.get_workflow_handle(f"dunning-{invoice['id']}")

    assert (await api.deliver(first)).status_code == 200
    run_id = (await handle.describe()).run_id
    assert (await api.deliver(again)).status_code == 200

    assert (await handle.describe()).run_id == run_id  # the same run, not a new case
    signals = await received(dev_env.client, invoice["id"])
    assert [(name, arg["stripe_event_id"], arg["attempt_count"]) for name, arg in signals] == [
        ("payment_failed", first["id"], 1),
        ("payment_failed", again["id"], 2),
    ]


@pytest.mark.parametrize("api_version", VERSIONS)
@pytest.mark.parametrize("type_", ["invoice.paid", "invoice.payment_succeeded"])
async def test_paid_signals_payment_succeeded(
    api: Api,
    ledger: Ledger,
    dev_env: WorkflowEnvironment,
    idle_cases: list[tuple[Client, str]],
    api_version: str,
    type_: str,
) -> None:
    case = await idle_case(dev_env.client, api.app.state.settings.dunning_task_queue, idle_cases)
    invoice = pl.invoice(
        api_version, id=case.invoice_id, customer=case.customer_id, amount_paid=1000, status="paid"
    )
    evt = pl.event(type_, invoice, api_version)

    response = await api.deliver(evt)

    assert response.status_code == 200
    action = f"signalled payment_succeeded to dunning-{case.invoice_id}"
    assert response.json()["action"] == action
    assert await later_signals(dev_env.client, case.invoice_id) == [
        ("payment_succeeded", {"stripe_event_id": evt["id"], "amount_paid": 1000})
    ]
    row = event_row(ledger, evt["id"])
    assert row is not None and (row.status, row.action) == ("done", action)


async def test_paid_without_a_case_is_recorded_as_no_running_case(api: Api, ledger: Ledger) -> None:
    evt = pl.event("invoice.paid", pl.invoice(API_2020, status="paid"))

    response = await api.deliver(evt)

    expected = f"no running case (dunning-{evt['data']['object']['id']})"
    assert (response.status_code, response.json()["action"]) == (200, expected)
    row = event_row(ledger, evt["id"])
    assert row is not None and (row.status, row.action) == ("done", expected)


@pytest.mark.parametrize("api_version", VERSIONS)
@pytest.mark.parametrize(
    ("type_", "reason"),
    [
        ("invoice.voided", "invoice voided in Stripe"),
        ("invoice.marked_uncollectible", "invoice marked uncollectible in Stripe"),
    ],
)
async def test_void_and_uncollectible_stop_the_case(
    api: Api,
    dev_env: WorkflowEnvironment,
    idle_cases: list[tuple[Client, str]],
    api_version: str,
    type_: str,
    reason: str,
) -> None:
    case = await idle_case(dev_env.client, api.app.state.settings.dunning_task_queue, idle_cases)
    status = "void" if type_ == "invoice.voided" else "uncollectible"
    evt = pl.event(type_, pl.invoice(api_version, id=case.invoice_id, status=status), api_version)

    response = await api.deliver(evt)

    assert response.status_code == 200
    assert await later_signals(dev_env.client, case.invoice_id) == [
        ("stop", {"reason": reason, "by": f"stripe:{evt['id']}"})
    ]


@pytest.mark.parametrize("api_version", VERSIONS)
async def test_payment_action_required_sends_the_invoice_link(
    api: Api, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]], api_version: str
) -> None:
    case = await idle_case(dev_env.client, api.app.state.settings.dunning_task_queue, idle_cases)
    url = f"https://invoice.example.test/pay/{case.invoice_id}"
    invoice = pl.invoice(api_version, id=case.invoice_id, hosted_invoice_url=url)
    evt = pl.event("invoice.payment_action_required", invoice, api_version)

    response = await api.deliver(evt)

    assert response.status_code == 200
    assert await later_signals(dev_env.client, case.invoice_id) == [
        ("payment_action_required", {"stripe_event_id": evt["id"], "hosted_invoice_url": url})
    ]


async def test_unknown_types_are_ignored(api: Api, ledger: Ledger) -> None:
    evt = pl.event("invoice.finalized", pl.invoice(API_ENDIVE))

    response = await api.deliver(evt)
    again = await api.deliver(evt)

    assert (response.status_code, response.json()) == (
        200,
        {"ignored": "invoice.finalized", "event": evt["id"]},
    )
    assert again.json()["duplicate"] is True
    row = event_row(ledger, evt["id"])
    assert row is not None and (row.status, row.deliveries) == ("ignored", 2)


@pytest.mark.parametrize("api_version", VERSIONS)
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("customer", None, "data.object.customer: field required"),
        ("currency", None, "data.object.currency: field required"),
        ("customer", "cus_x' OR CustomerId != '", "data.object.customer: value error, not a"),
    ],
)
async def test_incomplete_payment_failed_is_refused_naming_the_field(
    api: Api,
    ledger: Ledger,
    dev_env: WorkflowEnvironment,
    api_version: str,
    field: str,
    value: Any,
    message: str,
) -> None:
    invoice = pl.invoice(api_version)
    if value is None:
        del invoice[field]
    else:
        invoice[field] = value
    evt = pl.event("invoice.payment_failed", invoice, api_version)

    response = await api.deliver(evt)

    assert response.status_code == 400
    assert response.json()["error"].startswith(f"invoice.payment_failed: {message}")
    with pytest.raises(RPCError):
        await dev_env.client.get_workflow_handle(f"dunning-{invoice['id']}").describe()
    assert event_row(ledger, evt["id"]) is None  # refused before it was kept


async def test_echo_of_the_cases_own_final_action_is_not_a_stop(
    api: Api, ledger: Ledger, dev_env: WorkflowEnvironment, idle_cases: list[tuple[Client, str]]
) -> None:
    case = await idle_case(dev_env.client, api.app.state.settings.dunning_task_queue, idle_cases)
    evt = pl.event(
        "invoice.marked_uncollectible", pl.invoice(id=case.invoice_id, status="uncollectible")
    )
    evt["request"] = {"id": "req_1", "idempotency_key": f"dunning-{case.invoice_id}:final"}
    by_hand = pl.event(
        "invoice.marked_uncollectible", pl.invoice(id=case.invoice_id, status="uncollectible")
    )
    by_hand["request"] = {"id": "req_2", "idempotency_key": "dashboard-5d1f"}

    echo = await api.deliver(evt)
    manual = await api.deliver(by_hand)

    wid = f"dunning-{case.invoice_id}"
    assert (echo.json()["status"], echo.json()["action"]) == (
        "ignored",
        f"own event: caused by {wid} itself; not signalled",
    )
    assert manual.json()["action"] == f"signalled stop to {wid}"
    assert [arg["by"] for _, arg in await later_signals(dev_env.client, case.invoice_id)] == [
        f"stripe:{by_hand['id']}"
    ]
