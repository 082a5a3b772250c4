"""Stripe event -> what to do to the dunning cases (a pure plan), then doing it on Temporal.

The routing table is documented once, in the endpoint's description (starter/webhooks/router.py).
A signal to a case that is not running is recorded as "no running case" and answered 200.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import dunning as m
from models.ledger import Case
from models.store import Ledger
from starter.cases import start_case, started_new_run
from starter.deps import bounded
from starter.webhooks import payloads as p
from workflows import search_attributes as sa

# The plan: what an event asks for, decided from the payload alone.


@dataclass(frozen=True)
class StartCase:
    input: m.DunningInput
    signal: m.PaymentFailedInput


@dataclass(frozen=True)
class SignalCase:
    invoice_id: str
    signal: str
    arg: BaseModel


@dataclass(frozen=True)
class SignalMatching:
    """Signal every running case whose search attribute `attribute` equals `value`."""

    attribute: Literal["CustomerId", "SubscriptionId"]
    value: str
    signal: str
    arg: BaseModel
    also_invoice: str | None = None


@dataclass(frozen=True)
class Ignore:
    reason: str
    unhandled_type: bool = False


Plan = StartCase | SignalCase | SignalMatching | Ignore


def _start(event: p.Event) -> Plan:
    invoice = p.parse_object(event, p.Invoice)
    error = invoice.last_payment_error or p.LastPaymentError()
    try:
        input = m.DunningInput(
            invoice_id=invoice.id,
            customer_id=invoice.customer,
            subscription_id=invoice.subscription_id,
            amount_due=invoice.open_amount,
            currency=invoice.currency,
            decline_code=error.decline_code,
            advice_code=error.advice_code,
            failure_message=error.message,
            stripe_event_id=event.id,
            failed_at=event.created,
        )
    except ValidationError as err:
        first = err.errors()[0]
        raise p.PayloadError(f"{event.type}: {first['loc'][0]}: {first['msg'].lower()}") from err
    signal = m.PaymentFailedInput(
        stripe_event_id=event.id,
        decline_code=error.decline_code,
        advice_code=error.advice_code,
        failure_message=error.message,
        attempt_count=invoice.attempt_count,
    )
    return StartCase(input, signal)


def _paid(event: p.Event) -> Plan:
    invoice = p.parse_object(event, p.InvoiceRef)
    arg = m.PaymentSucceededInput(stripe_event_id=event.id, amount_paid=invoice.amount_paid)
    return SignalCase(invoice.id, "payment_succeeded", arg)


def _stop_invoice(reason: str) -> Callable[[p.Event], Plan]:
    def plan(event: p.Event) -> Plan:
        invoice = p.parse_object(event, p.InvoiceRef)
        workflow_id = sa.workflow_id_for(invoice.id)
        # The echo of the case's own final action (its Stripe calls use idempotency keys
        # `dunning-{invoice}:...`): the case already knows, and a stop arriving while that
        # action completes would replace its outcome.
        if (event.idempotency_key or "").startswith(f"{workflow_id}:"):
            return Ignore(f"caused by {workflow_id} itself; not signalled")
        return SignalCase(invoice.id, "stop", m.StopInput(reason=reason, by=f"stripe:{event.id}"))

    return plan


def _action_required(event: p.Event) -> Plan:
    invoice = p.parse_object(event, p.InvoiceRef)
    arg = m.PaymentActionRequiredInput(
        stripe_event_id=event.id, hosted_invoice_url=invoice.hosted_invoice_url
    )
    return SignalCase(invoice.id, "payment_action_required", arg)


def _subscription_deleted(event: p.Event) -> Plan:
    sub = p.parse_object(event, p.Subscription)
    stop = m.StopInput(reason="subscription canceled in Stripe", by=f"stripe:{event.id}")
    # The latest invoice is usually the one being dunned: signal it directly as well, since
    # the visibility query may not show a case started a moment ago.
    return SignalMatching("SubscriptionId", sub.id, "stop", stop, also_invoice=sub.latest_invoice)


def _method_updated(customer: str, event: p.Event, payment_method: str | None) -> Plan:
    arg = m.PaymentMethodUpdatedInput(stripe_event_id=event.id, payment_method_id=payment_method)
    return SignalMatching("CustomerId", customer, "payment_method_updated", arg)


def _pm_attached(event: p.Event) -> Plan:
    pm = p.parse_object(event, p.PaymentMethod)
    if not pm.customer:
        return Ignore("payment method has no customer")
    return _method_updated(pm.customer, event, pm.id)


def _setup_succeeded(event: p.Event) -> Plan:
    intent = p.parse_object(event, p.SetupIntent)
    if not intent.customer:
        return Ignore("setup intent has no customer")
    return _method_updated(intent.customer, event, intent.payment_method)


def _customer_updated(event: p.Event) -> Plan:
    # Only a change of the default payment method matters; Stripe lists the old values of
    # changed fields in previous_attributes (https://docs.stripe.com/api/events/object).
    previous = (event.data.previous_attributes or {}).get("invoice_settings")
    if not isinstance(previous, dict) or "default_payment_method" not in previous:
        return Ignore("default payment method unchanged")
    customer = p.parse_object(event, p.Customer)
    new = customer.invoice_settings.default_payment_method if customer.invoice_settings else None
    if not new:
        return Ignore("default payment method removed")
    return _method_updated(customer.id, event, new)


PLANNERS: dict[str, Callable[[p.Event], Plan]] = {
    "invoice.payment_failed": _start,
    "invoice.paid": _paid,
    "invoice.payment_succeeded": _paid,
    "invoice.voided": _stop_invoice("invoice voided in Stripe"),
    "invoice.marked_uncollectible": _stop_invoice("invoice marked uncollectible in Stripe"),
    "invoice.payment_action_required": _action_required,
    "customer.subscription.deleted": _subscription_deleted,
    "payment_method.attached": _pm_attached,
    "setup_intent.succeeded": _setup_succeeded,
    "customer.updated": _customer_updated,
}


def plan(event: p.Event) -> Plan:
    """Decide from the payload alone; raises PayloadError naming a missing or bad field."""
    planner = PLANNERS.get(event.type)
    if planner is None:
        return Ignore(f"event type {event.type} not handled", unhandled_type=True)
    return planner(event)


# Execution on Temporal.


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
            if await self._signal(workflow_id, plan.signal, plan.arg):
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

    async def _signal(self, workflow_id: str, signal: str, arg: Any) -> bool:
        """Signal the latest run; False if it is not running (NOT_FOUND)."""
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            await bounded(handle.signal(signal, arg), self.timeout)
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
        ordered = sorted(ids)
        results = await asyncio.gather(
            *(self._signal(wid, plan.signal, plan.arg) for wid in ordered)
        )
        signalled = [wid for wid, ok in zip(ordered, results, strict=True) if ok]
        if not signalled:
            return Done("done", f"no running case ({plan.attribute} {plan.value})")
        return Done("done", f"signalled {plan.signal} to {', '.join(signalled)}")

    def _open_cases(self, attribute: str, value: str) -> list[str]:
        if self.ledger is None:
            return []
        column = Case.customer_id if attribute == "CustomerId" else Case.subscription_id
        with self.ledger.sessions() as session:
            rows = session.scalars(
                select(Case.workflow_id).where(column == value, Case.closed_at.is_(None))
            )
            return list(rows)
