"""Helpers shared by the workflow scenario tests."""

from __future__ import annotations

import asyncio
import json
import time
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
from tests.deadline import eventually
from tests.standin_control import (
    EXPIRED,
    INSUFFICIENT,
    FailedInvoice,
    SendGridControl,
    StripeControl,
)
from workflows.dunning import DunningWorkflow

__all__ = ["EXPIRED", "INSUFFICIENT", "advance_until", "ledger_rows", "open_case", "sent_keys"]


async def advance_until(
    env: WorkflowEnvironment,
    handle: WorkflowHandle,
    check: Callable[[DunningState], bool],
    step: timedelta = timedelta(hours=1),
    within: float = 60.0,
) -> DunningState:
    """Skip time in steps (on the time-skipping server; on a real-time server `step` is a
    pause) until the status query satisfies `check`, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        state = await handle.query(DunningWorkflow.status)
        if check(state):
            return state
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not reached within {within}s; last state {state}")
        if step:
            await env.sleep(step)
        else:
            await asyncio.sleep(0.1)


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
    """When each activity of a type ran (server time, i.e. skipped time): a regular one when
    scheduled, a local one (reads, bookkeeping) when its marker was recorded."""
    history = await handle.fetch_history()
    times = []
    ran: str | None
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            ran = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.HasField("marker_recorded_event_attributes"):
            ran = local_activity_type(event.marker_recorded_event_attributes)
        else:
            continue
        if ran == activity_type:
            times.append(event.event_time.ToDatetime().replace(tzinfo=None))
    return times


def local_activity_type(marker: Any) -> str | None:
    """The activity type a local-activity marker records (the SDK's `data` detail, plain JSON)."""
    if marker.marker_name != "core_local_activity" or "data" not in marker.details:
        return None
    (data,) = marker.details["data"].payloads
    return json.loads(data.data).get("activity_type")


async def open_case(
    client: Client, settings: Settings, task_queue: str
) -> tuple[FailedInvoice, WorkflowHandle[Any, Any]]:
    """A failed invoice's case, once opened (policy loaded) and its history settled."""
    case = StripeControl(settings).failed_invoice(INSUFFICIENT)
    handle = await start_case(client, case.dunning_input(), task_queue)
    await eventually(
        lambda: handle.query(DunningWorkflow.status), lambda s: s.total_steps > 0, what="opened"
    )
    # Settled: two reads of the history length a moment apart agree.
    lengths: list[int] = []

    async def length() -> list[int]:
        lengths.append(await history_length(handle))
        await asyncio.sleep(0.2)
        return lengths

    await eventually(length, lambda seen: len(seen) > 1 and seen[-1] == seen[-2], what="settled")
    return case, handle
