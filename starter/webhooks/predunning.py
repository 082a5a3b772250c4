"""Doing a plan's pre-dunning part (routing.SignalPreDunning) on Temporal: signal each of the
customer's running card-expiry warnings.

Found in two places, because visibility is eventually consistent
(docs.temporal.io/visibility): the ledger's predunning_cases rows still `warned` (written by
each warning's first activity) and a visibility query; a warning that has ended answers
NOT_FOUND to the signal and is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from models.predunning import PREDUNNING_WORKFLOW
from models.predunning_store import warned_workflows
from models.store import Ledger
from starter.deps import bounded
from starter.webhooks.routing import SignalPreDunning

# (workflow id, signal, argument, request id) -> False when the workflow is not running.
Signal = Callable[[str, str, Any, str], Awaitable[bool]]


async def running_warnings(
    client: Client, ledger: Ledger | None, customer: str, seconds: float
) -> list[str]:
    query = (
        f"WorkflowType = '{PREDUNNING_WORKFLOW}' AND ExecutionStatus = 'Running'"
        f" AND CustomerId = '{customer}'"
    )

    async def listed() -> list[str]:
        return [w.id async for w in client.list_workflows(query, limit=500)]

    ids = set(await bounded(listed(), seconds))
    if ledger is not None:
        ids |= set(await run_in_threadpool(warned_workflows, ledger.sessions, customer))
    return sorted(ids)


async def signal_warnings(
    client: Client,
    ledger: Ledger | None,
    plan: SignalPreDunning,
    signal: Signal,
    seconds: float,
) -> list[str]:
    """Signal every running warning of the customer; returns the ids that took the signal."""
    ids = await running_warnings(client, ledger, plan.customer, seconds)
    results = await asyncio.gather(
        *(signal(wid, plan.signal, plan.arg, plan.request_id) for wid in ids)
    )
    return [wid for wid, ok in zip(ids, results, strict=True) if ok]
