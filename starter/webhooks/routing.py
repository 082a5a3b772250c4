"""Stripe event -> what to do to the dunning cases: a pure plan (starter.webhooks.executor
carries it out on Temporal).

The routing table is documented once, in the endpoint's description (starter/webhooks/router.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ValidationError

from models import dunning as m
from models.predunning import CARD_UPDATED_SIGNAL, CardUpdatedInput
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
    # Temporal drops a second signal with the same request id to the same run: one fact that
    # Stripe reports twice (two event types, or a redelivery) enters the history once.
    request_id: str


@dataclass(frozen=True)
class SignalPreDunning:
    """Signal every running card-expiry warning (PreDunningWorkflow) of a customer."""

    customer: str
    signal: str
    arg: BaseModel
    request_id: str


@dataclass(frozen=True)
class SignalMatching:
    """Signal every running case whose search attribute `attribute` equals `value`."""

    attribute: Literal["CustomerId", "SubscriptionId"]
    value: str
    signal: str
    arg: BaseModel
    request_id: str
    also_invoice: str | None = None
    # The case whose own Stripe call caused the event: it knows already.
    except_workflow: str | None = None
    # The customer's card-expiry warnings to end as well (a new card reached Stripe).
    predunning: SignalPreDunning | None = None


@dataclass(frozen=True)
class Ignore:
    reason: str
    unhandled_type: bool = False
    own_event: bool = False


Plan = StartCase | SignalCase | SignalMatching | Ignore


def _caused_by(event: p.Event) -> str | None:
    """The case whose own Stripe call caused the event: its idempotency keys are
    `dunning-{invoice}:...` (Stripe copies the request's key into event.request)."""
    key = event.idempotency_key or ""
    owner = key.split(":", 1)[0]
    return owner if owner.startswith("dunning-") and ":" in key else None


def _own_echo(event: p.Event, invoice_id: str) -> Ignore | None:
    """The case already has the result of its own call from its activity: not told twice."""
    workflow_id = sa.workflow_id_for(invoice_id)
    if _caused_by(event) == workflow_id:
        return Ignore(f"own event: caused by {workflow_id} itself; not signalled", own_event=True)
    return None


def _start(event: p.Event) -> Plan:
    invoice = p.parse_object(event, p.Invoice)
    echo = _own_echo(event, invoice.id)
    if echo is not None:  # our retry declined: the case got the decline as its result
        return echo
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
    echo = _own_echo(event, invoice.id)
    if echo is not None:  # our retry succeeded: the case recovered from its result
        return echo
    arg = m.PaymentSucceededInput(stripe_event_id=event.id, amount_paid=invoice.amount_paid)
    # invoice.paid and invoice.payment_succeeded report the same payment: one signal.
    return SignalCase(invoice.id, "payment_succeeded", arg, f"paid:{invoice.id}")


def _stop_invoice(reason: str) -> Callable[[p.Event], Plan]:
    def plan(event: p.Event) -> Plan:
        invoice = p.parse_object(event, p.InvoiceRef)
        # The echo of the case's own final action: a stop arriving while that action
        # completes would replace its outcome.
        echo = _own_echo(event, invoice.id)
        if echo is not None:
            return echo
        stop = m.StopInput(reason=reason, by=f"stripe:{event.id}")
        return SignalCase(invoice.id, "stop", stop, f"event:{event.id}")

    return plan


def _action_required(event: p.Event) -> Plan:
    invoice = p.parse_object(event, p.InvoiceRef)
    arg = m.PaymentActionRequiredInput(
        stripe_event_id=event.id, hosted_invoice_url=invoice.hosted_invoice_url
    )
    return SignalCase(invoice.id, "payment_action_required", arg, f"event:{event.id}")


def _subscription_deleted(event: p.Event) -> Plan:
    sub = p.parse_object(event, p.Subscription)
    stop = m.StopInput(reason="subscription canceled in Stripe", by=f"stripe:{event.id}")
    # The latest invoice is usually the one being dunned: signal it directly as well, since
    # the visibility query may not show a case started a moment ago.
    # A case's own final action canceled it: that case knows; its other cases are told.
    owner = _caused_by(event)
    return SignalMatching(
        "SubscriptionId",
        sub.id,
        "stop",
        stop,
        f"event:{event.id}",
        also_invoice=sub.latest_invoice,
        except_workflow=owner,
    )


def _method_updated(customer: str, event: p.Event, payment_method: str | None) -> Plan:
    arg = m.PaymentMethodUpdatedInput(stripe_event_id=event.id, payment_method_id=payment_method)
    # One new card arrives as payment_method.attached, customer.updated and often
    # setup_intent.succeeded: the card's id makes them one signal per case.
    request_id = f"card:{payment_method}" if payment_method else f"event:{event.id}"
    warning = CardUpdatedInput(stripe_event_id=event.id, payment_method_id=payment_method)
    predunning = SignalPreDunning(customer, CARD_UPDATED_SIGNAL, warning, request_id)
    return SignalMatching(
        "CustomerId", customer, "payment_method_updated", arg, request_id, predunning=predunning
    )


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
