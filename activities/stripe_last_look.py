"""The final action's last look at Stripe: an invoice that no longer needs the action (paid,
voided, already uncollectible), and a default card the case never charged."""

from __future__ import annotations

import logging
from typing import Any

import stripe

from models.activities import FinalActionInput, FinalActionResult
from models.dunning import Outcome
from models.stripe_reads import get, object_id

log = logging.getLogger("dunning.stripe")


def last_look(client: stripe.StripeClient, input: FinalActionInput) -> Any:
    """The invoice, read right before the final action; with its customer expanded when the
    action looks for an untried card (`known_cards`): one request for both."""
    if input.known_cards is None:
        return client.v1.invoices.retrieve(input.invoice_id)
    return client.v1.invoices.retrieve(input.invoice_id, params={"expand": ["customer"]})


def untried_card(client: stripe.StripeClient, invoice: Any, input: FinalActionInput) -> str | None:
    """The customer's default card, if open and the case never charged it (`known_cards`).
    The customer comes expanded in the invoice, else is read: one that cannot be read (an
    implementation without the route) means no such card; an outage or a rate limit raises
    instead, as nothing has been done yet: Temporal retries the activity rather than cancel
    past a card the customer may just have set."""
    if input.known_cards is None or invoice.status != "open":
        return None
    customer = get(invoice, "customer")
    customer_id = input.customer_id or object_id(customer)
    if isinstance(customer, str | None) and customer_id:  # not expanded
        try:
            customer = client.v1.customers.retrieve(customer_id)
        except stripe.StripeError as exc:
            if transient(exc):
                raise
            log.warning("Last look without the customer: %s %s", exc.http_status, exc.code)
            return None
    card = object_id(get(customer, "invoice_settings", "default_payment_method"))
    return card if card and card not in input.known_cards else None


def transient(exc: stripe.StripeError) -> bool:
    """Worth asking again (no answer, a rate limit, a 5xx); a 4xx (even one with an HTML body,
    which the SDK raises as an APIError) is an answer."""
    status = exc.http_status
    return isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        status is None or status >= 500
    )


def settled_outcome(
    invoice: Any, input: FinalActionInput, action: Any, after_refusal: bool = False
) -> FinalActionResult | None:
    if invoice.status == "paid":
        return FinalActionResult(
            action=action,
            outcome=Outcome.RECOVERED,
            detail="invoice found paid at the final action; nothing canceled",
            amount_paid=invoice.amount_paid or 0,
        )
    if invoice.status == "void":
        return FinalActionResult(
            action=action, outcome=Outcome.VOIDED, detail="invoice found voided"
        )
    if invoice.status == "uncollectible" and (after_refusal or action == "mark_uncollectible"):
        return FinalActionResult(
            action=action,
            outcome=Outcome.MARKED_UNCOLLECTIBLE,
            detail=f"invoice {input.invoice_id} is uncollectible",
        )
    return None
