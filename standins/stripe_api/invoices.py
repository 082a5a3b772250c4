"""Invoices and invoice items: lifecycle draft → open → paid / void / uncollectible."""

from __future__ import annotations

import secrets
from typing import Any

from . import invoice_shapes
from .core import Core, Ctx, apply_metadata, as_bool, as_int, fetch, require
from .customers import attached_pm
from .errors import invalid
from .payments import attempt_payment
from .state import new_id, now

HOUR = 3600


def _line_for_item(inv: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    return invoice_shapes.line_item(
        inv, item["amount"], item["description"], invoice_item=item["id"]
    )


def create_invoice(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    cust = fetch(core, require(params, "customer"), "cus", "customer", "customer")
    sub = None
    if params.get("subscription"):
        sub = fetch(core, params["subscription"], "sub", "subscription", "subscription")
        if sub["customer"] != cust["id"]:
            raise invalid(
                "The subscription does not belong to this customer.", param="subscription"
            )
    currency = str(params.get("currency") or (sub or {}).get("currency") or "usd").lower()
    collection = params.get("collection_method") or "charge_automatically"
    if collection not in ("charge_automatically", "send_invoice"):
        raise invalid(f"Invalid collection_method: {collection}", param="collection_method")
    days = as_int(params, "days_until_due")
    if collection == "send_invoice" and days is None:
        raise invalid(
            "Missing required param: days_until_due.",
            param="days_until_due",
            code="parameter_missing",
        )
    inv = invoice_shapes.invoice(cust, sub, currency)
    inv["collection_method"] = collection
    # Stripe's API reference: auto_advance defaults to false for invoices created via the API.
    inv["auto_advance"] = as_bool(params, "auto_advance", False)
    inv["description"] = params.get("description") or None
    if days is not None:
        inv["due_date"] = inv["created"] + days * 86400
    if params.get("default_payment_method"):
        inv["default_payment_method"] = attached_pm(
            core, ctx, params["default_payment_method"], cust["id"], "default_payment_method"
        )
    apply_metadata(inv, params.get("metadata"))
    if params.get("pending_invoice_items_behavior") == "include":
        for item in core.store.objects.values():
            if (
                item["object"] == "invoiceitem"
                and item["customer"] == cust["id"]
                and item["invoice"] is None
                and item["currency"] == currency
            ):
                item["invoice"] = inv["id"]
                inv["lines"]["data"].append(_line_for_item(inv, item))
    invoice_shapes.recompute_totals(inv)
    core.store.put(inv)
    ctx.emit(core, "invoice.created", inv)
    return inv


def create_invoice_item(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    cust = fetch(core, require(params, "customer"), "cus", "customer", "customer")
    amount = as_int(params, "amount")
    if amount is None:
        raise invalid("Missing required param: amount.", param="amount", code="parameter_missing")
    inv = None
    if params.get("invoice"):
        inv = fetch(core, params["invoice"], "in", "invoice", "invoice")
        if inv["status"] != "draft":
            raise invalid(
                "You can only add invoice items to draft invoices.",
                param="invoice",
                code="invoice_not_editable",
            )
    currency = str(params.get("currency") or (inv or {}).get("currency") or "")
    if not currency:
        raise invalid(
            "Missing required param: currency.", param="currency", code="parameter_missing"
        )
    ts = now()
    item = {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency.lower(),
        "customer": cust["id"],
        "date": ts,
        "description": params.get("description") or None,
        "discountable": True,
        "discounts": [],
        "invoice": inv["id"] if inv else None,
        "livemode": False,
        "metadata": {},
        "parent": None,
        "period": {"start": ts, "end": ts},
        "pricing": None,
        "proration": False,
        "quantity": 1,
        "tax_rates": [],
        "test_clock": None,
    }
    apply_metadata(item, params.get("metadata"))
    core.store.put(item)
    if inv is not None:
        inv["lines"]["data"].append(_line_for_item(inv, item))
        invoice_shapes.recompute_totals(inv)
    return item


def finalize(core: Core, ctx: Ctx, inv: dict[str, Any], auto_advance: bool | None) -> None:
    if inv["status"] != "draft":
        raise invalid(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice."
        )
    cust = core.store.objects[inv["customer"]]
    ts = now()
    if auto_advance is not None:
        inv["auto_advance"] = auto_advance
    core.store.invoice_sequence += 1
    token = secrets.token_urlsafe(18)
    inv.update(
        status="open",
        number=f"{cust['invoice_prefix']}-{cust['next_invoice_sequence']:04d}",
        hosted_invoice_url=f"https://invoice.stripe.com/i/acct_standin/test_{token}",
        invoice_pdf=f"https://pay.stripe.com/invoice/acct_standin/test_{token}/pdf",
        effective_at=ts,
        customer_email=cust["email"],
        customer_name=cust["name"],
    )
    cust["next_invoice_sequence"] += 1
    inv["status_transitions"]["finalized_at"] = ts
    if inv["auto_advance"] and inv["collection_method"] == "charge_automatically":
        # Stripe attempts automatic collection about an hour after finalization.
        inv["next_payment_attempt"] = ts + HOUR
    ctx.emit(core, "invoice.finalized", inv)
    if inv["amount_due"] == 0:
        # Zero-due invoices are settled at finalization.
        _mark_paid(core, ctx, inv)


def _mark_paid(core: Core, ctx: Ctx, inv: dict[str, Any]) -> None:
    inv.update(
        status="paid", amount_paid=inv["amount_due"], amount_remaining=0, next_payment_attempt=None
    )
    inv["status_transitions"]["paid_at"] = now()
    ctx.emit(core, "invoice.paid", inv)


def finalize_invoice(core: Core, ctx: Ctx, params: dict[str, Any], inv_id: str) -> dict[str, Any]:
    inv = fetch(core, inv_id, "in", "invoice")
    auto = as_bool(params, "auto_advance", False) if "auto_advance" in params else None
    finalize(core, ctx, inv, auto)
    return inv


def pick_payment_method(core: Core, inv: dict[str, Any]) -> str | None:
    # Stripe's documented priority for invoice payments: the invoice's default payment
    # method, then the subscription's, then the customer's invoice_settings default.
    if inv["default_payment_method"]:
        return str(inv["default_payment_method"])
    parent = inv.get("parent") or {}
    sub_id = (parent.get("subscription_details") or {}).get("subscription")
    if sub_id and core.store.objects[sub_id]["default_payment_method"]:
        return str(core.store.objects[sub_id]["default_payment_method"])
    cust = core.store.objects[inv["customer"]]
    pm = cust["invoice_settings"]["default_payment_method"]
    return str(pm) if pm else None


def pay_invoice(core: Core, ctx: Ctx, params: dict[str, Any], inv_id: str) -> dict[str, Any]:
    inv = fetch(core, inv_id, "in", "invoice")
    if inv["status"] == "paid":
        raise invalid("Invoice is already paid")
    if inv["status"] == "void":
        raise invalid("This invoice can no longer be paid because it is void.")
    off_session = as_bool(params, "off_session", True)
    if as_bool(params, "paid_out_of_band", False):
        if inv["status"] == "draft":
            finalize(core, ctx, inv, None)
        if inv["status"] != "paid":
            # invoice.paid (not invoice.payment_succeeded) covers out-of-band payments.
            _mark_paid(core, ctx, inv)
        return inv
    if params.get("payment_method"):
        pm_id = attached_pm(core, ctx, params["payment_method"], inv["customer"], "payment_method")
    else:
        pm_id = pick_payment_method(core, inv) or ""
    if not pm_id:
        raise invalid(
            "This customer has no attached payment source or default payment method. "
            "Please consider adding a default payment method. For more information, visit "
            "https://docs.stripe.com/billing/subscriptions/payment-methods-setting"
            "#payment-method-priority."
        )
    if inv["status"] == "draft":
        finalize(core, ctx, inv, None)
        if inv["status"] == "paid":
            return inv
    return attempt_payment(core, ctx, inv, pm_id, off_session=off_session)


def void_invoice(core: Core, ctx: Ctx, params: dict[str, Any], inv_id: str) -> dict[str, Any]:
    inv = fetch(core, inv_id, "in", "invoice")
    if inv["status"] not in ("open", "uncollectible"):
        raise invalid(
            f"You can only void open or uncollectible invoices; this invoice is {inv['status']}."
        )
    inv.update(status="void", next_payment_attempt=None)
    inv["status_transitions"]["voided_at"] = now()
    ctx.emit(core, "invoice.voided", inv)
    return inv


def mark_uncollectible(core: Core, ctx: Ctx, params: dict[str, Any], inv_id: str) -> dict[str, Any]:
    inv = fetch(core, inv_id, "in", "invoice")
    if inv["status"] != "open":
        raise invalid(
            f"You can only mark open invoices as uncollectible; this invoice is {inv['status']}."
        )
    inv.update(status="uncollectible", next_payment_attempt=None)
    inv["status_transitions"]["marked_uncollectible_at"] = now()
    ctx.emit(core, "invoice.marked_uncollectible", inv)
    return inv


def retrieve_invoice(core: Core, ctx: Ctx, params: dict[str, Any], inv_id: str) -> dict[str, Any]:
    return fetch(core, inv_id, "in", "invoice")


def list_invoices(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    limit = min(max(as_int(params, "limit", 10) or 10, 1), 100)
    found = [
        o
        for o in core.store.objects.values()
        if o["object"] == "invoice"
        and (not params.get("customer") or o["customer"] == params["customer"])
        and (not params.get("status") or o["status"] == params["status"])
        and (
            not params.get("subscription")
            or ((o.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            == params["subscription"]
        )
    ]
    found.sort(key=lambda o: o["created"], reverse=True)
    return {
        "object": "list",
        "data": found[:limit],
        "has_more": len(found) > limit,
        "url": "/v1/invoices",
    }
