"""Test controls under `/_standin/` (not part of Stripe's API; no auth)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from . import customers, invoice_shapes, invoices, subscriptions
from .core import Core, Ctx
from .errors import StripeError
from .state import Fault


class FaultIn(BaseModel):
    # 500: with an idempotency key it is saved and replayed, as Stripe does; hang: the request
    # executes and the answer is late; delay: the request waits, then executes and answers.
    # not_found: a 404 with an HTML body, as a Stripe implementation without the route answers.
    mode: Literal["500", "429", "lock_timeout", "hang", "delay", "not_found"]
    count: int = Field(default=1, ge=1)
    path_contains: str | None = None
    hang_seconds: float = Field(default=30.0, ge=0)


class WebhookIn(BaseModel):
    url: str | None = None
    secret: str | None = None


class FailedInvoiceIn(BaseModel):
    payment_method: str = "pm_card_chargeDeclinedInsufficientFunds"
    amount: int = Field(default=1200, ge=1)
    currency: str = "eur"
    name: str | None = "Stand-in Customer"
    email: str | None = "customer@example.com"
    phone: str | None = None
    preferred_locales: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)


def failed_invoice(core: Core, spec: FailedInvoiceIn) -> dict[str, Any]:
    """A renewal invoice whose first automatic collection attempt was declined."""
    api = Ctx()
    with core.store.lock:
        cust = customers.create_customer(
            core,
            api,
            {
                "name": spec.name,
                "email": spec.email,
                "phone": spec.phone,
                "metadata": spec.metadata,
                "preferred_locales": spec.preferred_locales,
                "payment_method": spec.payment_method,
                "invoice_settings": {"default_payment_method": spec.payment_method},
            },
        )
        sub = subscriptions.create_subscription(
            core,
            api,
            {
                "customer": cust["id"],
                "items": [
                    {
                        "price_data": {
                            "currency": spec.currency,
                            "unit_amount": spec.amount,
                            "product_data": {"name": "Stand-in plan"},
                            "recurring": {"interval": "month"},
                        }
                    }
                ],
            },
        )
        inv = invoice_shapes.cycle_invoice(cust, sub, spec.currency)
        core.store.put(inv)
        sub["latest_invoice"] = inv["id"]
        # Stripe's own attempt: no API request behind it, so event.request has null fields.
        automatic = Ctx()
        automatic.emit(core, "invoice.created", inv)
        invoices.finalize(core, automatic, inv, None)
        pm_id = invoices.pick_payment_method(core, inv) or ""
        try:
            invoices.attempt_payment(core, automatic, inv, pm_id, off_session=True)
        except StripeError:
            pass
        else:
            raise HTTPException(400, f"{spec.payment_method} did not decline")
        event = next(
            e
            for e in reversed(core.store.events)
            if e["type"] == "invoice.payment_failed" and e["data"]["object"]["id"] == inv["id"]
        )
        return {
            "customer": cust["id"],
            "subscription": sub["id"],
            "invoice": inv["id"],
            "event": event,
        }


def control_router(core: Core) -> APIRouter:
    router = APIRouter(prefix="/_standin")
    store = core.store

    @router.post("/faults")
    def add_fault(fault: FaultIn) -> dict[str, Any]:
        with store.lock:
            store.faults.append(
                Fault(fault.mode, fault.count, fault.path_contains, fault.hang_seconds)
            )
            return {"faults": [vars(f) for f in store.faults if f.remaining > 0]}

    @router.delete("/faults")
    def clear_faults() -> dict[str, Any]:
        with store.lock:
            store.faults.clear()
            return {"faults": []}

    @router.get("/faults")
    def list_faults() -> dict[str, Any]:
        with store.lock:
            return {"faults": [vars(f) for f in store.faults if f.remaining > 0]}

    @router.get("/invoices/{invoice_id}/charges")
    def charges(invoice_id: str) -> dict[str, Any]:
        with store.lock:
            attempts = list(store.charges.get(invoice_id, []))
        return {"invoice": invoice_id, "count": len(attempts), "attempts": attempts}

    @router.post("/webhooks")
    def webhooks(config: WebhookIn) -> dict[str, Any]:
        core.emitter.configure(config.url, config.secret)
        return {"url": config.url, "configured": bool(config.url)}

    @router.get("/events")
    def events() -> dict[str, Any]:
        with store.lock:
            return {"events": list(store.events), "deliveries": list(store.deliveries)}

    @router.get("/requests")
    def requests() -> dict[str, Any]:
        with store.lock:
            return {"requests": list(store.requests)}

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        # Webhook configuration survives a reset; objects, logs, keys and faults do not.
        store.reset()
        return {"reset": True}

    @router.post("/scenarios/failed_invoice")
    def scenario(spec: FailedInvoiceIn) -> dict[str, Any]:
        return failed_invoice(core, spec)

    return router
