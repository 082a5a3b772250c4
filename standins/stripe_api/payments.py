"""One payment attempt on an invoice: the only place a test card is "charged"."""

from __future__ import annotations

import copy
from typing import Any

from .cards import Decline
from .core import Core, Ctx
from .customers import card_for
from .errors import StripeError, doc_url
from .state import new_id, now
from .subscriptions import set_status

DAY = 86400
# Stripe's smart-retry schedule is adaptive; a fixed spacing stands in for it.
RETRY_SPACING = 3 * DAY
MAX_AUTOMATIC_ATTEMPTS = 4

_REQUIRES_ACTION_MESSAGE = (
    "This payment requires additional user action before it can be completed successfully. "
    "Payment can be completed using the PaymentIntent associated with the invoice. "
    "For more details see: https://docs.stripe.com/billing/subscriptions/overview#requires-action"
)


def _payment_intent(core: Core, inv: dict[str, Any], pm_id: str) -> dict[str, Any]:
    pi_id = core.store.invoice_pis.get(inv["id"])
    if pi_id:
        pi = core.store.objects[pi_id]
    else:
        pi_id = new_id("pi")
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": inv["amount_due"],
            "amount_capturable": 0,
            "amount_received": 0,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{pi_id}_secret_{new_id('s', 16)[2:]}",
            "confirmation_method": "automatic",
            "created": now(),
            "currency": inv["currency"],
            "customer": inv["customer"],
            "description": f"Payment for Invoice {inv['number']}",
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": {},
            "next_action": None,
            "payment_method": None,
            "payment_method_types": ["card"],
            "setup_future_usage": None,
            "status": "requires_payment_method",
        }
        core.store.put(pi)
        core.store.invoice_pis[inv["id"]] = pi_id
    pi["payment_method"] = pm_id
    return pi


def _subscription(core: Core, inv: dict[str, Any]) -> dict[str, Any] | None:
    parent = inv.get("parent") or {}
    sub_id = (parent.get("subscription_details") or {}).get("subscription")
    return core.store.objects.get(sub_id) if sub_id else None


def attempt_payment(
    core: Core, ctx: Ctx, inv: dict[str, Any], pm_id: str, *, off_session: bool
) -> dict[str, Any]:
    card = card_for(core, pm_id)
    pi = _payment_intent(core, inv, pm_id)
    charge_id = new_id("ch")
    pi["latest_charge"] = charge_id
    inv["attempt_count"] += 1
    inv["attempted"] = True
    decline = card.decline
    core.store.charges.setdefault(inv["id"], []).append(
        {
            "charge": charge_id,
            "payment_intent": pi["id"],
            "idempotency_key": ctx.idempotency_key,
            "request_id": ctx.request_id,
            "payment_method": pm_id,
            "amount": inv["amount_due"],
            "outcome": "declined" if decline else "succeeded",
            "decline_code": decline.decline_code if decline else None,
            "created": now(),
        }
    )
    cust = core.store.objects[inv["customer"]]
    sub = _subscription(core, inv)
    if decline is None:
        inv.update(
            status="paid",
            amount_paid=inv["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
        )
        inv["status_transitions"]["paid_at"] = now()
        pi.update(
            status="succeeded",
            amount_received=inv["amount_due"],
            last_payment_error=None,
            next_action=None,
        )
        cust["delinquent"] = False
        if sub is not None:
            set_status(core, ctx, sub, "active")
        ctx.emit(core, "invoice.paid", inv)
        ctx.emit(core, "invoice.payment_succeeded", inv)
        return inv
    raise _decline(core, ctx, inv, pi, charge_id, decline, pm_id, off_session, sub)


def _decline(
    core: Core,
    ctx: Ctx,
    inv: dict[str, Any],
    pi: dict[str, Any],
    charge_id: str,
    decline: Decline,
    pm_id: str,
    off_session: bool,
    sub: dict[str, Any] | None,
) -> StripeError:
    needs_action = decline.requires_authentication
    error: dict[str, Any] = {
        "type": "card_error",
        "charge": charge_id,
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": doc_url(decline.code),
        "message": decline.message,
        "payment_method": copy.deepcopy(core.store.objects.get(pm_id)),
    }
    if decline.advice_code:
        error["advice_code"] = decline.advice_code
    if decline.network_decline_code:
        error["network_decline_code"] = decline.network_decline_code
    if decline.param:
        error["param"] = decline.param
    if needs_action and not off_session:
        # On-session, Billing leaves the PaymentIntent for the customer to authenticate.
        error = {
            "type": "card_error",
            "code": "invoice_payment_intent_requires_action",
            "doc_url": doc_url("invoice_payment_intent_requires_action"),
            "message": _REQUIRES_ACTION_MESSAGE,
        }
    pi["last_payment_error"] = copy.deepcopy(error)
    if needs_action:
        # The invoice's PaymentIntent waits for 3DS; hosted invoice page can complete it.
        pi["status"] = "requires_action"
        pi["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": "https://hooks.stripe.com/3d_secure",
            },
        }
    else:
        pi["status"] = "requires_payment_method"
        pi["next_action"] = None
    if inv["auto_advance"] and inv["attempt_count"] < MAX_AUTOMATIC_ATTEMPTS:
        inv["next_payment_attempt"] = now() + RETRY_SPACING
    else:
        inv["next_payment_attempt"] = None
    core.store.objects[inv["customer"]]["delinquent"] = True
    if sub is not None:
        set_status(core, ctx, sub, "past_due")
    ctx.emit(core, "invoice.payment_failed", inv)
    if needs_action:
        ctx.emit(core, "invoice.payment_action_required", inv)
    request_log = (
        f"https://dashboard.stripe.com/test/logs/{ctx.request_id}" if ctx.request_id else None
    )
    extra = {
        k: v for k, v in error.items() if k not in ("type", "message", "code", "param", "doc_url")
    }
    return StripeError(
        402,
        "card_error",
        error["message"],
        code=error["code"],
        param=error.get("param"),
        saved=True,
        payment_intent=copy.deepcopy(pi),
        request_log_url=request_log,
        **extra,
    )
