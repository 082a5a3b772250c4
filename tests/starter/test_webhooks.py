"""POST /webhooks/stripe against real Temporal servers, the ledger database and the stand-ins.

Cases without a worker are started on a task queue nobody polls: they stay Running, so the
assertions read what reached them from their history (started input, signals received).
Those run on the dev server (fan-out events need its visibility queries anyway); whole cases
with a worker run on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, DunningInput, Outcome
from models.ledger import Attempt, Case, CaseOutcome, utcnow
from models.settings import Settings
from models.store import Ledger
from models.stripe_events import StripeEvent
from standins.server import BackgroundServer, free_port
from starter import cases
from starter.app import create_app
from tests.deadline import eventually
from tests.standin_control import SendGridControl, StripeControl
from tests.starter import payloads as pl
from tests.starter.payloads import API_2020, API_DAHLIA, API_ENDIVE, OLD_SECRET, SECRET, VERSIONS
from tests.starter.webhook_client import Api, applied, event_row
from tests.workflows.helpers import INSUFFICIENT, ledger_rows
from workflows import search_attributes as sa
from workflows.dunning import DunningWorkflow


async def as_json(client: Client, payload: Any) -> dict[str, Any]:
    """A history payload as JSON, decrypted first when the client has a payload codec."""
    codec = client.data_converter.payload_codec
    if codec is not None:
        (payload,) = await codec.decode([payload])
    return dict(json.loads(payload.data))


async def received(client: Client, invoice: str) -> list[tuple[str, dict[str, Any]]]:
    """(signal name, JSON argument) of every signal the invoice's case received, in order."""
    history = await client.get_workflow_handle(sa.workflow_id_for(invoice)).fetch_history()
    out = []
    for e in history.events:
        if e.HasField("workflow_execution_signaled_event_attributes"):
            attrs = e.workflow_execution_signaled_event_attributes
            arg = await as_json(client, attrs.input.payloads[0]) if attrs.input.payloads else {}
            out.append((attrs.signal_name, arg))
    return out


async def later_signals(client: Client, invoice: str) -> list[tuple[str, dict[str, Any]]]:
    """The signals after the `payment_failed` that `start_case` opens every case with."""
    signals = await received(client, invoice)
    return signals[1:] if signals and signals[0][0] == "payment_failed" else signals


async def started_with(client: Client, invoice: str) -> dict[str, Any]:
    """The case's DunningInput as the webhook sent it (JSON)."""
    history = await client.get_workflow_handle(sa.workflow_id_for(invoice)).fetch_history()
    attrs = history.events[0].workflow_execution_started_event_attributes
    return await as_json(client, attrs.input.payloads[0])


async def visible(client: Client, query: str, count: int) -> None:
    async def listed() -> int:
        return len([w async for w in client.list_workflows(query)])

    await eventually(listed, lambda n: n == count, what=f"{count} cases listed for {query}")


def case_input(**values: Any) -> DunningInput:
    defaults: dict[str, Any] = {
        "invoice_id": pl.new_id("in"),
        "customer_id": pl.new_id("cus"),
        "amount_due": 1000,
        "currency": "eur",
    }
    return DunningInput(**{**defaults, **values})


async def idle_case(
    client: Client, task_queue: str, idle: list[tuple[Client, str]], **values: Any
) -> DunningInput:
    """A case on a task queue nobody polls: it stays Running with what it received."""
    input = case_input(**values)
    await cases.start_case(client, input, task_queue)
    idle.append((client, sa.workflow_id_for(input.invoice_id)))
    return input


# Signatures and request hygiene: nothing is recorded, started or signalled when refused.


def ignored_event() -> dict[str, Any]:
    return pl.event("charge.succeeded", {"id": pl.new_id("ch"), "object": "charge"})


async def test_valid_signature_is_accepted_and_recorded(api: Api, ledger: Ledger) -> None:
    evt = ignored_event()
    response = await api.deliver(evt)

    assert response.status_code == 200
    assert response.json() == {"ignored": "charge.succeeded", "event": evt["id"]}
    row = event_row(ledger, evt["id"])
    assert row is not None
    assert (row.type, row.status, row.deliveries, row.api_version) == (
        "charge.succeeded",
        "ignored",
        1,
        API_ENDIVE,
    )
    assert row.event_created == datetime.fromtimestamp(evt["created"], UTC)
    assert row.action == "event type charge.succeeded not handled"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_secret", "invalid signature"),
        ("stale", "signature timestamp older than 300 seconds"),
        ("missing_header", "missing Stripe-Signature header"),
        ("tampered_body", "invalid signature"),
        ("garbage_header", "invalid signature"),
    ],
)
async def test_bad_signatures_are_refused(
    api: Api, ledger: Ledger, dev_env: WorkflowEnvironment, case: str, error: str
) -> None:
    invoice = pl.invoice(API_ENDIVE)
    evt = pl.event("invoice.payment_failed", invoice)
    body = pl.body_of(evt)
    if case == "wrong_secret":
        response = await api.deliver(body=body, secret="whsec_someone_else")
    elif case == "stale":
        response = await api.deliver(body=body, timestamp=int(time.time()) - 301)
    elif case == "missing_header":
        response = await api.http.post("/webhooks/stripe", content=body)
    elif case == "tampered_body":
        signature = pl.sign(body)
        response = await api.deliver(body=body.replace(b"2500", b"1"), signature=signature)
    else:
        response = await api.deliver(body=body, signature="t=abc,v0=zzz")

    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert event_row(ledger, evt["id"]) is None
    with pytest.raises(RPCError):
        await dev_env.client.get_workflow_handle(f"dunning-{invoice['id']}").describe()


async def test_secret_rotation_accepts_each_configured_secret(
    dev_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger
) -> None:
    rotating = api_settings.model_copy(update={"stripe_webhook_secret": f"{SECRET}, {OLD_SECRET}"})
    api = Api(create_app(rotating, client=dev_env.client, ledger=ledger))
    old, new, both, other = (ignored_event() for _ in range(4))

    by_old = await api.deliver(old, secret=OLD_SECRET)
    by_new = await api.deliver(new, secret=SECRET)
    # During a roll Stripe signs with both secrets: one v1 entry per secret.
    body = pl.body_of(both)
    now = int(time.time())
    v1_new = pl.sign(body, SECRET, now).split(",")[1]
    v1_old = pl.sign(body, OLD_SECRET, now).split(",")[1]
    by_both = await api.deliver(body=body, signature=f"t={now},{v1_old},{v1_new}")
    by_other = await api.deliver(other, secret="whsec_retired_long_ago")

    assert [r.status_code for r in (by_old, by_new, by_both, by_other)] == [200, 200, 200, 400]
    assert all(event_row(ledger, e["id"]) is not None for e in (old, new, both))
    assert event_row(ledger, other["id"]) is None


async def test_no_secret_configured_refuses_everything(
    dev_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger
) -> None:
    unset = api_settings.model_copy(update={"stripe_webhook_secret": " , "})
    api = Api(create_app(unset, client=dev_env.client, ledger=ledger))
    evt = ignored_event()

    response = await api.deliver(evt)

    assert (response.status_code, response.json()) == (
        400,
        {"error": "webhook secret not configured"},
    )
    assert event_row(ledger, evt["id"]) is None


async def test_secrets_never_appear_in_logs_or_answers(
    dev_env: WorkflowEnvironment,
    api_settings: Settings,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rotating = api_settings.model_copy(update={"stripe_webhook_secret": f"{SECRET},{OLD_SECRET}"})
    api = Api(create_app(rotating, client=dev_env.client, ledger=ledger))
    caplog.set_level(logging.DEBUG)
    answers = [
        await api.deliver(ignored_event(), secret="whsec_wrong"),
        await api.deliver(ignored_event(), timestamp=int(time.time()) - 3600),
        await api.deliver(body=b"{not json", secret=SECRET),
        await api.deliver(ignored_event()),
    ]

    assert [a.status_code for a in answers] == [400, 400, 400, 200]
    for text in [caplog.text, *(a.text for a in answers)]:
        assert SECRET not in text and OLD_SECRET not in text
        assert "whsec_" not in text


async def test_malformed_json_is_refused(api: Api, ledger: Ledger) -> None:
    response = await api.deliver(body=b'{"id": "evt_1", "type": ')
    not_event = await api.deliver(body=b'{"object": "invoice", "id": "in_1"}')

    assert response.status_code == 400
    assert response.json() == {"error": "body is not JSON: JSONDecodeError"}
    assert not_event.status_code == 400
    assert "expected 'event'" in not_event.json()["error"]
    assert event_row(ledger, "evt_1") is None


async def test_oversize_bodies_are_refused(api: Api, ledger: Ledger) -> None:
    evt = ignored_event()
    evt["data"]["object"]["padding"] = "x" * (1024 * 1024)
    body = pl.body_of(evt)

    declared = await api.deliver(body=body)

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold on the bytes actually read.
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    streamed = await api.http.post(
        "/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": pl.sign(body)}
    )
    lying = await api.http.post(
        "/webhooks/stripe",
        content=chunks(),
        headers={"Stripe-Signature": pl.sign(body), "Content-Length": "100"},
    )

    assert "content-length" not in streamed.request.headers
    for response in (declared, streamed):
        assert (response.status_code, response.json()) == (413, {"error": "body larger than 1 MiB"})
    assert lying.status_code == 413, lying.text
    assert event_row(ledger, evt["id"]) is None


# Routing of invoice events (time-skipping server; no visibility needed).


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


# Exactly-once effect.


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


# Fan-out events: visibility queries on the dev server.


def running(attribute: str, value: str) -> str:
    return (
        f"WorkflowType = 'DunningWorkflow' AND ExecutionStatus = 'Running'"
        f" AND {attribute} = '{value}'"
    )


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


def method_event(kind: str, customer: str, pm: str, api_version: str) -> dict[str, Any]:
    if kind == "payment_method.attached":
        return pl.event(kind, pl.payment_method(customer, id=pm), api_version)
    if kind == "setup_intent.succeeded":
        return pl.event(kind, pl.setup_intent(customer, pm), api_version)
    return pl.event(
        "customer.updated",
        pl.customer_object(customer, default_payment_method=pm),
        api_version,
        previous_attributes={"invoice_settings": {"default_payment_method": "pm_old"}},
    )


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


# End to end: the Stripe stand-in delivers real signed webhooks to the app over HTTP.


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
