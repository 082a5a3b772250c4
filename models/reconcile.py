"""Close ledger cases whose workflow ended outside its own path.

A workflow records its outcome itself (the `close_case` activity). One that is terminated
(`temporal workflow terminate`, `dunning dev` closing an earlier run's cases), times out, fails
or is deleted never does, so its ledger case would stay open for ever and the report would
count it in progress. The reconciler compares the ledger's open cases with Temporal and records
the real end: Temporal's close status and time, and the reason given when it was terminated.

It cannot correct the workflow's search attributes: Temporal only lets a running workflow
upsert them. Readers of visibility (`dunning list`, the console, the API) therefore read
`ExecutionStatus` beside `DunningStatus` (see `starter.support.service`).

Run by the worker every DUNNING_RECONCILE_SECONDS and by `dunning reconcile`. Idempotent: an
outcome is written at most once per case (insert-ignore), so several workers may run it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from models.claim_sweep import Lookup, sweep_claims
from models.dunning import Outcome
from models.ledger import Attempt, Case, utcnow
from models.store import Ledger

log = logging.getLogger("dunning.reconcile")

CLOSED_AS = {
    WorkflowExecutionStatus.TERMINATED: Outcome.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: Outcome.TIMED_OUT,
    WorkflowExecutionStatus.FAILED: Outcome.WORKFLOW_FAILED,
    WorkflowExecutionStatus.CANCELED: Outcome.WORKFLOW_CANCELED,
}
# Open cases looked at per run, oldest first: a backlog is worked through over several runs.
BATCH = 500
MAX_REASON = 500


@dataclass(frozen=True)
class Reconciled:
    invoice_id: str
    workflow_id: str
    outcome: Outcome
    closed_at: datetime
    reason: str


async def reconcile(
    client: Client, ledger: Ledger, invoices: Collection[str] = (), limit: int = BATCH
) -> list[Reconciled]:
    """Record an outcome for each open ledger case (of `invoices`, if given) whose workflow
    is no longer running."""
    found = []
    cases = await asyncio.to_thread(_open_cases, ledger, invoices, limit)
    for invoice_id, workflow_id, currency in cases:
        ended = await _ended(client, invoice_id, workflow_id)
        if ended is None:
            continue
        attempts = await asyncio.to_thread(_attempts, ledger, invoice_id)
        written = await asyncio.to_thread(
            ledger.record_outcome,
            invoice_id,
            ended.outcome.value,
            currency,
            attempts,
            closed_at=ended.closed_at,
            reason=ended.reason,
        )
        if written:
            log.info("reconciled %s: %s (%s)", workflow_id, ended.outcome.value, ended.reason)
            found.append(ended)
    return found


def _open_cases(
    ledger: Ledger, invoices: Collection[str], limit: int
) -> list[tuple[str, str, str]]:
    query = select(Case.invoice_id, Case.workflow_id, Case.currency).where(Case.closed_at.is_(None))
    if invoices:
        query = query.where(Case.invoice_id.in_(list(invoices)))
    with ledger.sessions() as session:
        rows = session.execute(query.order_by(Case.opened_at).limit(limit))
        return [(row.invoice_id, row.workflow_id, row.currency) for row in rows]


def _attempts(ledger: Ledger, invoice_id: str) -> int:
    with ledger.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.invoice_id == invoice_id)
        )
        return int(count or 0)


async def _ended(client: Client, invoice_id: str, workflow_id: str) -> Reconciled | None:
    """How the case's latest run ended, or None while it runs (or completed on its own path)."""
    try:
        # No run id: the latest run, so a reset (which starts a new run) counts as running.
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        reason = "no workflow in Temporal (deleted, or past the namespace's retention)"
        return Reconciled(invoice_id, workflow_id, Outcome.MISSING, utcnow(), reason)
    outcome = CLOSED_AS.get(described.status) if described.status else None
    if outcome is None:
        # Running, continued as new, or completed: a completed case closed its own ledger row
        # in its last activity; one that did not is a bug to see, not to paper over.
        if described.status == WorkflowExecutionStatus.COMPLETED:
            log.warning("%s completed without closing its ledger case", workflow_id)
        return None
    reason = await close_reason(client, workflow_id, described.run_id, outcome)
    closed_at = described.close_time or utcnow()
    return Reconciled(invoice_id, workflow_id, outcome, closed_at, reason)


async def close_reason(client: Client, workflow_id: str, run_id: str, outcome: Outcome) -> str:
    """The last history event says who ended the run and why (terminate reason, failure)."""
    request = GetWorkflowExecutionHistoryReverseRequest(
        namespace=client.namespace,
        execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        maximum_page_size=1,
    )
    words = outcome.value.replace("_", " ")
    try:
        events = await client.workflow_service.get_workflow_execution_history_reverse(request)
    except RPCError as err:  # the outcome stands without its reason
        return f"{words} ({err.status.name if err.status else 'history unavailable'})"
    if not events.history.events:
        return words
    last = events.history.events[0]
    if last.HasField("workflow_execution_terminated_event_attributes"):
        attributes = last.workflow_execution_terminated_event_attributes
        who = f" by {attributes.identity}" if attributes.identity else ""
        why = f": {attributes.reason}" if attributes.reason else ""
        return f"terminated{who}{why}"[:MAX_REASON]
    if last.HasField("workflow_execution_failed_event_attributes"):
        failure = last.workflow_execution_failed_event_attributes.failure
        # With the payload codec the message is encoded: decode it through the client's
        # converter, as the UI's codec server does.
        error = await client.data_converter.decode_failure(failure)
        return f"workflow failed: {error}"[:MAX_REASON]
    return words


async def reconcile_every(
    client: Client, ledger: Ledger, seconds: float, lookups: Mapping[str, Lookup] | None = None
) -> None:
    """The worker's loop (a task it cancels at shutdown): one run now, then every `seconds`.
    With `lookups`, each run also sweeps the stale message claims of closed cases."""
    while True:
        try:
            await reconcile(client, ledger)
        except Exception:  # Temporal or the database away for a moment: the next run retries
            log.warning("reconciliation failed; retrying in %ss", seconds, exc_info=True)
        try:
            if lookups:
                await sweep_claims(client, ledger, lookups)
        except Exception:
            log.warning("claim sweep failed; retrying in %ss", seconds, exc_info=True)
        await asyncio.sleep(seconds)
