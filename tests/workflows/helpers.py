"""Helpers shared by the workflow scenario tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.dunning import DunningState
from models.settings import Settings
from models.store import Ledger
from starter.cases import start_case
from tests.standin_control import FailedInvoice, SendGridControl, StripeControl
from workflows.dunning import DunningWorkflow

INSUFFICIENT = "pm_card_chargeDeclinedInsufficientFunds"
EXPIRED = "pm_card_chargeDeclinedExpiredCard"


async def advance_until(
    env: WorkflowEnvironment,
    handle: WorkflowHandle,
    check: Callable[[DunningState], bool],
    step: timedelta = timedelta(hours=1),
    limit: int = 2000,
) -> DunningState:
    """Skip time in small steps until the status query satisfies `check`."""
    for _ in range(limit):
        state = await handle.query(DunningWorkflow.status)
        if check(state):
            return state
        await env.sleep(step)
    raise AssertionError(f"condition not reached; last state {state}")


def sent_keys(sendgrid: SendGridControl, invoice: str) -> list[str]:
    """Dedupe keys of the messages SendGrid accepted, without the `dunning-{invoice}:` prefix."""
    keys = [m["custom_args"]["dunning_dedupe_key"] for m in sendgrid.messages(invoice)]
    return [key.split(":", 1)[1] for key in keys]


def ledger_rows(ledger: Ledger, model: Any, invoice: str) -> list[Any]:
    with ledger.sessions() as session:
        return list(
            session.scalars(select(model).where(model.invoice_id == invoice).order_by(model.id))
        )


async def history_length(handle: WorkflowHandle) -> int:
    return len((await handle.fetch_history()).events)


async def activity_times(handle: WorkflowHandle, activity_type: str) -> list[Any]:
    """When each activity of a type was scheduled (server time, i.e. skipped time)."""
    history = await handle.fetch_history()
    return [
        event.event_time.ToDatetime().replace(tzinfo=None)
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]


async def open_case(
    client: Client, settings: Settings, task_queue: str
) -> tuple[FailedInvoice, WorkflowHandle[Any, Any]]:
    """A failed invoice's case, once opened (policy loaded) and its history settled."""
    case = StripeControl(settings).failed_invoice(INSUFFICIENT)
    handle = await start_case(client, case.dunning_input(), task_queue)
    for _ in range(200):
        if (await handle.query(DunningWorkflow.status)).total_steps:
            break
        await asyncio.sleep(0.05)
    length = -1
    while length != (length := await history_length(handle)):
        await asyncio.sleep(0.2)
    return case, handle
