"""Doing a webhook's plan (starter.webhooks.routing) on Temporal: start, signal, fan out.

A signal to a case that is not running is recorded as "no running case" and answered 200.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.ledger import Case
from models.store import Ledger
from starter.cases import start_case, started_new_run
from starter.deps import bounded
from starter.webhooks.predunning import signal_warnings
from starter.webhooks.routing import Ignore, Plan, SignalCase, SignalMatching, StartCase
from workflows import search_attributes as sa


@dataclass(frozen=True)
class Done:
    status: Literal["done", "ignored"]
    action: str


class Executor:
    def __init__(
        self, client: Client, task_queue: str, ledger: Ledger | None, timeout: float
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.ledger = ledger
        self.timeout = timeout

    async def run(self, plan: Plan) -> Done:
        if isinstance(plan, Ignore):
            return Done("ignored", plan.reason)
        if isinstance(plan, StartCase):
            return await self._start(plan)
        if isinstance(plan, SignalCase):
            workflow_id = sa.workflow_id_for(plan.invoice_id)
            if await self._signal(workflow_id, plan.signal, plan.arg, plan.request_id):
                return Done("done", f"signalled {plan.signal} to {workflow_id}")
            return Done("done", f"no running case ({workflow_id})")
        return await self._fan_out(plan)

    async def _start(self, plan: StartCase) -> Done:
        workflow_id = sa.workflow_id_for(plan.input.invoice_id)
        try:
            handle = await bounded(
                start_case(self.client, plan.input, self.task_queue, plan.signal), self.timeout
            )
        except WorkflowAlreadyStartedError:
            # One case per invoice: a late or resent failure event must not reopen a case
            # that completed (recovered, stopped, canceled) and charge again.
            return Done("done", f"case {workflow_id} already closed; not reopened")
        if started_new_run(handle):
            return Done("done", f"started {workflow_id}")
        return Done("done", f"signalled payment_failed to {workflow_id} (signal-with-start)")

    async def _signal(self, workflow_id: str, signal: str, arg: Any, request_id: str) -> bool:
        """Signal the latest run; False if it is not running (NOT_FOUND)."""
        try:
            await bounded(self._send(workflow_id, signal, arg, request_id), self.timeout)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # A missing namespace is NOT_FOUND too, but it is our misconfiguration.
            if any(d.Is(NamespaceNotFoundFailure.DESCRIPTOR) for d in err.grpc_status.details):
                raise
            return False
        return True

    async def _fan_out(self, plan: SignalMatching) -> Done:
        # Visibility is eventually consistent (docs.temporal.io/visibility): a case started a
        # moment ago may not be listed yet. The ledger's open cases (written by the case's
        # first activity) and the direct handle of a known invoice cover that gap.
        query = (
            f"WorkflowType = 'DunningWorkflow' AND ExecutionStatus = 'Running'"
            f" AND {plan.attribute} = '{plan.value}'"
        )

        async def listed() -> list[str]:
            return [w.id async for w in self.client.list_workflows(query, limit=500)]

        ids = set(await bounded(listed(), self.timeout))
        ids |= set(await run_in_threadpool(self._open_cases, plan.attribute, plan.value))
        if plan.also_invoice:
            ids.add(sa.workflow_id_for(plan.also_invoice))
        ids.discard(plan.except_workflow or "")
        ordered = sorted(ids)
        results = await asyncio.gather(
            *(self._signal(wid, plan.signal, plan.arg, plan.request_id) for wid in ordered)
        )
        signalled = [wid for wid, ok in zip(ordered, results, strict=True) if ok]
        done = [f"signalled {plan.signal} to {', '.join(signalled)}"] if signalled else []
        if plan.predunning is not None:
            # The customer's card-expiry warnings end on the same new card.
            warned = await signal_warnings(
                self.client, self.ledger, plan.predunning, self._signal, self.timeout
            )
            if warned:
                done.append(f"signalled {plan.predunning.signal} to {', '.join(warned)}")
        if not done:
            return Done("done", f"no running case ({plan.attribute} {plan.value})")
        return Done("done", "; ".join(done))

    async def _send(self, workflow_id: str, signal: str, arg: Any, request_id: str) -> None:
        # The SDK's handle.signal() sends a random request id; Temporal dedupes signals by
        # request id per run (SignalWorkflowExecutionRequest.request_id), so send our own.
        request = SignalWorkflowExecutionRequest(
            namespace=self.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            signal_name=signal,
            identity=self.client.identity,
            request_id=request_id,
        )
        request.input.payloads.extend(await self.client.data_converter.encode([arg]))
        await self.client.workflow_service.signal_workflow_execution(request, retry=True)

    def _open_cases(self, attribute: str, value: str) -> list[str]:
        if self.ledger is None:
            return []
        column = Case.customer_id if attribute == "CustomerId" else Case.subscription_id
        with self.ledger.sessions() as session:
            rows = session.scalars(
                select(Case.workflow_id).where(column == value, Case.closed_at.is_(None))
            )
            return list(rows)
