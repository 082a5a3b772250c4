"""Builders for invoices and their line items in the current API shape.

Since the 2025-03-31 ("basil") versions an invoice has no top-level `subscription`, `charge` or
`payment_intent`; the subscription is at `parent.subscription_details.subscription`, and each
line says where it came from in `parent` (invoice item or subscription item).
"""

from __future__ import annotations

from typing import Any

from .state import new_id, now


def invoice(cust: dict[str, Any], sub: dict[str, Any] | None, currency: str) -> dict[str, Any]:
    created = now()
    inv_id = new_id("in")
    parent = None
    if sub is not None:
        parent = {
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]},
            "type": "subscription_details",
        }
    return {
        "id": inv_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Stand-in Test Account",
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": cust["id"],
        "customer_account": None,
        "customer_address": cust["address"],
        "customer_email": cust["email"],
        "customer_name": cust["name"],
        "customer_phone": cust["phone"],
        "customer_shipping": cust["shipping"],
        "customer_tax_exempt": cust["tax_exempt"],
        "default_payment_method": None,
        "description": None,
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/invoices/{inv_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "parent": parent,
        "period_end": created,
        "period_start": created,
        "receipt_number": None,
        "starting_balance": 0,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def line_item(
    inv: dict[str, Any],
    amount: int,
    description: str | None,
    *,
    invoice_item: str | None = None,
    sub_item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if sub_item is not None:
        parent: dict[str, Any] = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": None,
                "subscription": sub_item["subscription"],
                "subscription_item": sub_item["id"],
            },
            "type": "subscription_item_details",
        }
        period = {"start": sub_item["current_period_start"], "end": sub_item["current_period_end"]}
        pricing = {
            "price_details": {
                "price": sub_item["price"]["id"],
                "product": sub_item["price"]["product"],
            },
            "type": "price_details",
            "unit_amount_decimal": sub_item["price"]["unit_amount_decimal"],
        }
        quantity = sub_item["quantity"]
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": False,
                "proration_details": None,
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
        period = {"start": inv["created"], "end": inv["created"]}
        pricing = None
        quantity = 1
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": inv["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": inv["id"],
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": period,
        "pretax_credit_amounts": [],
        "pricing": pricing,
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
    }


def recompute_totals(inv: dict[str, Any]) -> None:
    total = sum(line["amount"] for line in inv["lines"]["data"])
    inv["lines"]["total_count"] = len(inv["lines"]["data"])
    for key in (
        "subtotal",
        "subtotal_excluding_tax",
        "total",
        "total_excluding_tax",
        "amount_due",
        "amount_remaining",
    ):
        inv[key] = total


def cycle_invoice(cust: dict[str, Any], sub: dict[str, Any], currency: str) -> dict[str, Any]:
    """The invoice of a subscription's new period (`billing_reason: subscription_cycle`), one
    line per item, totals computed; the caller stores it and finalizes it."""
    inv = invoice(cust, sub, currency)
    inv.update(billing_reason="subscription_cycle", auto_advance=True)
    for item in sub["items"]["data"]:
        amount = item["price"]["unit_amount"] * item["quantity"]
        inv["lines"]["data"].append(line_item(inv, amount, "1 × Stand-in plan", sub_item=item))
    recompute_totals(inv)
    return inv
