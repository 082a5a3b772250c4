"""The final action's last look at Stripe: an invoice that no longer needs the action (paid,
voided, already uncollectible), and a default card the case never charged."""

from __future__ import annotations

from typing import Any

import stripe

from models.activities import FinalActionInput, FinalActionResult
from models.dunning import Outcome
from models.stripe_reads import get, object_id, optional


def untried_card(client: stripe.StripeClient, invoice: Any, input: FinalActionInput) -> str | None:
    """The customer's default card, if open and the case never charged it (`known_cards`).
    Enrichment: a customer that cannot be read means no such card."""
    if input.known_cards is None or invoice.status != "open":
        return None
    customer_id = input.customer_id or object_id(get(invoice, "customer"))
    if not customer_id:
        return None
    customer = optional("customer", lambda: client.v1.customers.retrieve(customer_id))
    card = object_id(get(customer, "invoice_settings", "default_payment_method"))
    return card if card and card not in input.known_cards else None


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
