"""Support operations on dunning cases, shared by the CLI, the HTTP API and the console.

Actions go through the workflow's Updates, so the validator decides; this layer only turns
Temporal's answers into three outcomes a person understands: done, rejected (with the
validator's message), or no such case.

Every action carries a request id (the API's Idempotency-Key header, the console form's
token, the CLI's --request-id; generated when absent) that becomes the Update id. Temporal
dedupes Updates by id within a run, so a client retrying after a timeout or a 503 gets the
first answer instead of granting grace twice.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecution, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from models.dunning import (
    CaseStatus,
    DunningState,
    GrantGraceInput,
    GrantGraceResult,
    PauseInput,
    PauseResult,
    ResumeInput,
    ResumeResult,
    RetryNowInput,
    RetryNowResult,
    StopInput,
    StopResult,
    SupportActionResult,
)
from models.reconcile import CLOSED_AS, close_reason
from starter.cases import case_handle
from workflows import search_attributes as sa
from workflows.dunning import DunningWorkflow

Action = Literal["grace", "pause", "resume", "retry-now", "stop"]
ACTIONS: tuple[Action, ...] = ("grace", "pause", "resume", "retry-now", "stop")
MAX_REQUEST_ID = 200


class CaseNotFound(Exception):
    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"no dunning case exists for invoice {invoice_id}")
        self.invoice_id = invoice_id


class ActionRejected(Exception):
    """The workflow's validator (or Temporal, for a finished case) refused the action."""


class BadRequestId(ValueError):
    """The caller's idempotency key is not one we accept (answered 400 / exit 2)."""


def request_id_or_new(value: str | None) -> str:
    """The caller's idempotency key once checked, or a new one when none was given."""
    if not value:
        return uuid.uuid4().hex
    if len(value) > MAX_REQUEST_ID:
        raise BadRequestId(f"the request id is longer than {MAX_REQUEST_ID} characters")
    if not all(" " <= ch <= "~" for ch in value):
        raise BadRequestId(
            "the request id may hold only printable ASCII characters (letters, digits,"
            " punctuation, spaces)"
        )
    return value


def update_id(action: Action, payload: BaseModel, key: str) -> str:
    """The Update id for `key`: a retry of the same request maps to the same id.

    The action and a digest of its input are part of it: the same key sent with another
    action or other fields is another request, not a retry that should get the old answer.
    """
    digest = hashlib.sha256(payload.model_dump_json().encode()).hexdigest()[:16]
    return f"support:{action}:{digest}:{key}"


class CaseSummary(BaseModel):
    """One row of `dunning list` / `GET /api/cases` (from Temporal visibility)."""

    invoice_id: str
    workflow_id: str
    customer_id: str | None = None
    subscription_id: str | None = None
    status: str | None = None
    step: int | None = None
    amount_due: int | None = None
    currency: str | None = None
    decline_code: str | None = None
    next_action_at: datetime | None = None
    workflow_status: str
    started_at: datetime | None = None
    closed_at: datetime | None = None


def _quoted(value: str, what: str) -> str:
    # Visibility queries have no bind parameters: refuse anything that could break out.
    if any(ch in value for ch in "'\"\\\n"):
        raise ValueError(f"{what} contains a quote or backslash: {value!r}")
    return f"'{value}'"


# Temporal's close statuses for a workflow that ended outside its own path.
ENDED_QUERY = "ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed', 'Canceled')"
OPEN_STATUSES = (CaseStatus.ACTIVE, CaseStatus.PAUSED)
RUNNING = "ExecutionStatus = 'Running'"


def list_query(
    status: str | None = None,
    customer: str | None = None,
    due_within: timedelta | None = None,
    now: datetime | None = None,
    segment: str | None = None,
    policy: str | None = None,
    variant: str | None = None,
) -> str:
    clauses = ["WorkflowType = 'DunningWorkflow'"]
    if status == CaseStatus.ENDED:
        clauses.append(ENDED_QUERY)
    elif status:
        clauses.append(f"DunningStatus = {_quoted(status, 'status')}")
        # A terminated workflow keeps the DunningStatus it had (Temporal lets only a running
        # workflow change its search attributes): "active" means running too.
        if status in OPEN_STATUSES:
            clauses.append(RUNNING)
    if customer:
        clauses.append(f"CustomerId = {_quoted(customer, 'customer')}")
    if segment:
        clauses.append(f"DunningSegment = {_quoted(segment, 'segment')}")
    if policy:
        clauses.append(f"DunningPolicy = {_quoted(policy, 'policy')}")
    if variant:
        clauses.append(f"DunningVariant = {_quoted(variant, 'variant')}")
    if due_within is not None:
        limit = (now or datetime.now(UTC)) + due_within
        clauses.append(f"NextActionAt <= '{limit.isoformat()}'")
        if RUNNING not in clauses:
            clauses.append(RUNNING)
    return " AND ".join(clauses)


def _summary(execution: WorkflowExecution) -> CaseSummary:
    attrs = execution.typed_search_attributes
    invoice = attrs.get(sa.INVOICE_ID) or execution.id.removeprefix("dunning-")
    status = attrs.get(sa.DUNNING_STATUS)
    if execution.status in CLOSED_AS:  # its DunningStatus is stale: say how it really ended
        status = CaseStatus.ENDED.value
    return CaseSummary(
        invoice_id=invoice,
        workflow_id=execution.id,
        customer_id=attrs.get(sa.CUSTOMER_ID),
        subscription_id=attrs.get(sa.SUBSCRIPTION_ID),
        status=status,
        step=attrs.get(sa.DUNNING_STEP),
        amount_due=attrs.get(sa.AMOUNT_DUE),
        currency=attrs.get(sa.CURRENCY),
        decline_code=attrs.get(sa.DECLINE_CODE),
        next_action_at=attrs.get(sa.NEXT_ACTION_AT),
        workflow_status=execution.status.name.lower() if execution.status else "unknown",
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


async def list_cases(client: Client, query: str, limit: int = 200) -> list[CaseSummary]:
    cases = []
    async for execution in client.list_workflows(query, limit=limit):
        cases.append(_summary(execution))
    return cases


async def case_status(client: Client, invoice_id: str) -> DunningState:
    """The case's state; for a workflow ended outside its path, that end (not its last state)."""
    handle = case_handle(client, invoice_id)
    try:
        described = await handle.describe()
        state = await handle.query(DunningWorkflow.status)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(invoice_id) from err
        raise
    ended = CLOSED_AS.get(described.status) if described.status else None
    if ended is None or state.outcome is not None:
        return state
    reason = await close_reason(client, described.id, described.run_id, ended)
    return state.model_copy(
        update={
            "status": CaseStatus.ENDED,
            "outcome": ended,
            "outcome_reason": reason,
            "next_action": None,
            "next_action_at": None,
        }
    )


def action_input(action: Action, **fields: Any) -> BaseModel:
    """Build the Update input; only the fields the action takes are used."""
    by, reason = fields.get("by") or "", fields.get("reason") or ""
    if action == "grace":
        return GrantGraceInput(days=int(fields.get("days") or 0), reason=reason, by=by)
    if action == "pause":
        return PauseInput(reason=reason, by=by)
    if action == "resume":
        return ResumeInput(by=by)
    if action == "retry-now":
        return RetryNowInput(by=by)
    return StopInput(reason=reason, by=by)


UPDATES: dict[Action, tuple[str, type[SupportActionResult]]] = {
    "grace": ("grant_grace", GrantGraceResult),
    "pause": ("pause", PauseResult),
    "resume": ("resume", ResumeResult),
    "retry-now": ("retry_now", RetryNowResult),
    "stop": ("stop", StopResult),
}


async def run_action(
    client: Client,
    invoice_id: str,
    action: Action,
    payload: BaseModel,
    key: str | None = None,
) -> SupportActionResult:
    """Run the action's Update once per `key` (see `request_id`); a retry gets its answer."""
    name, result_type = UPDATES[action]
    update = update_id(action, payload, key or request_id_or_new(None))
    result: SupportActionResult = await execute_case_update(
        client, invoice_id, name, payload, update, result_type
    )
    return result


async def execute_case_update(
    client: Client, invoice_id: str, name: str, payload: BaseModel, update: str, result_type: Any
) -> Any:
    """One of the case's Updates (support's or the payment page's), with the three outcomes
    both speak of: the answer, ActionRejected (the validator's words, or how the case
    ended) and CaseNotFound. `update` is the Update id: the same id is applied once."""
    handle = case_handle(client, invoice_id)
    try:
        return await handle.execute_update(name, payload, id=update, result_type=result_type)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise ActionRejected(getattr(cause, "message", None) or str(cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # Either no case ever existed, or it finished (Temporal refuses updates then).
            try:
                await handle.describe()
            except RPCError as missing:
                if missing.status == RPCStatusCode.NOT_FOUND:
                    raise CaseNotFound(invoice_id) from err
                raise
            raise ActionRejected(await _closed_words(client, invoice_id)) from err
        raise


async def _closed_words(client: Client, invoice_id: str) -> str:
    """Why an action on a finished case is refused, naming how the case ended."""
    try:
        state = await case_status(client, invoice_id)
    except (RPCError, CaseNotFound, RuntimeError):  # no worker to answer: say what we know
        return "the case is closed"
    words = state.outcome.value.replace("_", " ") if state.outcome else state.status.value
    return f"the case is closed: {words}" + (
        f" ({state.outcome_reason})" if state.outcome_reason else ""
    )
