"""The Stripe client and how to read Stripe objects of any API version.

Shared by the activities and the CLI's dry runs (`dunning explain`), so both talk to Stripe
with the same pinned version, no SDK retries, and the same tolerance for optional reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import stripe

from models.settings import Settings
from policies.case_facts import get, object_id

__all__ = [
    "STRIPE_API_VERSION",
    "decline_of",
    "failed_charge",
    "get",
    "last_decline",
    "make_stripe_client",
    "object_id",
    "optional",
]

log = logging.getLogger("dunning.stripe")
T = TypeVar("T")

# Pinned so that objects keep the shape this code reads; stripe-python 16.x is typed for it.
STRIPE_API_VERSION = "2026-10-28.endive"


def make_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    # max_network_retries=0: Temporal owns retries, so one retry of ours is one Stripe call.
    return stripe.StripeClient(
        settings.stripe_api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
    )


def decline_of(error: Any) -> tuple[str | None, str | None]:
    """(decline code, advice code) of a `last_payment_error`-shaped object."""
    if error is None:
        return None, None
    return get(error, "decline_code") or get(error, "code"), get(error, "advice_code")


def optional(what: str, call: Callable[[], T]) -> T | None:
    """An enrichment read: its failure (any Stripe error, a non-JSON 404) is logged, not raised."""
    try:
        return call()
    except stripe.StripeError as exc:
        log.warning("Optional Stripe read %s skipped: %s %s", what, exc.http_status, exc.code)
        return None


def last_decline(client: stripe.StripeClient, invoice: Any) -> Any:
    """The `last_payment_error` behind the failure (decline codes and the card that failed),
    which invoice.payment_failed does not carry: from the invoice's payments (API 2025-03-31
    and later), else its payment_intent (older versions). Each source is optional."""
    payments = optional(
        "invoice payments",
        lambda: client.v1.invoice_payments.list(
            params={
                "invoice": invoice.id,
                "limit": 1,
                "expand": ["data.payment.payment_intent"],
            }
        ),
    )
    for payment in get(payments, "data") or []:
        error = get(payment, "payment", "payment_intent", "last_payment_error")
        if error is not None:
            return error
    intent_id = object_id(get(invoice, "payment_intent"))
    if intent_id:
        intent = optional("payment intent", lambda: client.v1.payment_intents.retrieve(intent_id))
        return get(intent, "last_payment_error")
    return None


def failed_charge(client: stripe.StripeClient, invoice: Any) -> tuple[str | None, str | None]:
    """(decline code, card) from the invoice's charge, on API versions that name it."""
    charge_id = object_id(get(invoice, "charge"))
    if not charge_id:
        return None, None
    charge = optional("charge", lambda: client.v1.charges.retrieve(charge_id))
    code = get(charge, "outcome", "reason") or get(charge, "failure_code")
    return code, object_id(get(charge, "payment_method"))


def plan_name(subscription: Any) -> str | None:
    """What the customer pays for, in the merchant's words: the first item's price nickname,
    else its product's name when the product came expanded (never an id)."""
    items = get(subscription, "items", "data") or []
    price = get(items[0], "price") if items else None
    product = get(price, "product")
    nickname = get(price, "nickname")
    if nickname:
        return str(nickname)
    name = None if isinstance(product, str) else get(product, "name")
    return str(name) if name else None
