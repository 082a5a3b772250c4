"""`GET /v1/invoice_payments`: the payments of an invoice (API 2025-03-31 and later).

Since that version an invoice no longer names its PaymentIntent; a client finds the last
payment error through the InvoicePayment list, expanding `data.payment.payment_intent`.
"""

from __future__ import annotations

from typing import Any

from .core import Core, Ctx, as_int

_PI_STATUS_TO_PAYMENT = {"succeeded": "paid", "canceled": "canceled"}


def _invoice_payment(inv: dict[str, Any], pi: dict[str, Any]) -> dict[str, Any]:
    status = _PI_STATUS_TO_PAYMENT.get(pi["status"], "open")
    return {
        "id": f"inpay_{pi['id'][3:]}",
        "object": "invoice_payment",
        "amount_paid": pi["amount_received"] if status == "paid" else None,
        "amount_requested": pi["amount"],
        "created": pi["created"],
        "currency": pi["currency"],
        "invoice": inv["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
        "status": status,
        "status_transitions": {
            "canceled_at": pi.get("canceled_at"),
            "paid_at": inv["status_transitions"].get("paid_at") if status == "paid" else None,
        },
    }


def list_invoice_payments(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    limit = min(max(as_int(params, "limit", 10) or 10, 1), 100)
    wanted = params.get("invoice")
    found = []
    for invoice_id, pi_id in core.store.invoice_pis.items():
        if wanted and invoice_id != wanted:
            continue
        inv, pi = core.store.objects.get(invoice_id), core.store.objects.get(pi_id)
        if inv is not None and pi is not None:
            found.append(_invoice_payment(inv, pi))
    found.sort(key=lambda o: o["created"], reverse=True)
    return {
        "object": "list",
        "data": found[:limit],
        "has_more": len(found) > limit,
        "url": "/v1/invoice_payments",
    }
