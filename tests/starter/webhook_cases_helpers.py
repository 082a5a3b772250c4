"""Cases for the webhook tests (test_webhook*.py), and what reached them, read from history.

Cases without a worker are started on a task queue nobody polls: they stay Running, so the
assertions read what reached them from their history (started input, signals received).
"""

from __future__ import annotations

import json
from typing import Any

from temporalio.client import Client

from models.dunning import DunningInput
from starter import cases
from tests.deadline import eventually
from tests.starter import payloads as pl
from workflows import search_attributes as sa


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


def running(attribute: str, value: str) -> str:
    return (
        f"WorkflowType = 'DunningWorkflow' AND ExecutionStatus = 'Running'"
        f" AND {attribute} = '{value}'"
    )


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
