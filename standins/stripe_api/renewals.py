"""What the card-expiry scan reads, and the test controls around renewals.

- `GET /v1/subscriptions` (https://docs.stripe.com/api/subscriptions/list): newest first,
  `status` (a status, `all`, `ended`; by default every subscription but canceled ones),
  `customer`, `limit` (1-100, default 10), `starting_after` / `ending_before` cursors, and
  `expand[]=data.*` (applied by the app to the list).
- `/_standin/` controls: a subscription whose card expires on a given month and renews at a
  given time; the card account updater renewing a card in place (Stripe keeps the
  PaymentMethod id, changes `card.exp_month` / `exp_year` and sends
  `payment_method.automatically_updated`, https://docs.stripe.com/payments/cards/overview#automatic-card-updates);
  and a renewal billed now with the subscription's card.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from . import customers, invoice_shapes, invoices, objects, subscriptions
from .core import Core, Ctx, as_int, fetch
from .errors import StripeError, invalid

_ENDED = ("canceled", "incomplete_expired")


def _status_matches(sub: dict[str, Any], wanted: str | None) -> bool:
    if wanted in (None, ""):
        return sub["status"] != "canceled"
    if wanted == "all":
        return True
    if wanted == "ended":
        return sub["status"] in _ENDED
    return bool(sub["status"] == wanted)


def list_subscriptions(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    limit = as_int(params, "limit", 10) or 10
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    # Newest first; among equal timestamps the later-created object comes first, as Stripe's
    # ids order them.
    ordered = [
        o
        for o in reversed(list(core.store.objects.values()))
        if o["object"] == "subscription"
        and _status_matches(o, params.get("status"))
        and (not params.get("customer") or o["customer"] == params["customer"])
    ]
    ordered.sort(key=lambda o: o["created"], reverse=True)
    ids = [o["id"] for o in ordered]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        fetch(core, after, "sub", "subscription", "starting_after")
        page = ordered[ids.index(after) + 1 :] if after in ids else []
        data, has_more = page[:limit], len(page) > limit
    elif before:
        fetch(core, before, "sub", "subscription", "ending_before")
        page = ordered[: ids.index(before)] if before in ids else []
        data, has_more = page[-limit:], len(page) > limit
    else:
        data, has_more = ordered[:limit], len(ordered) > limit
    return {"object": "list", "data": data, "has_more": has_more, "url": "/v1/subscriptions"}


def _set_period_end(sub: dict[str, Any], period_end: int) -> None:
    # API 2025-03-31.basil and later: the billing period lives on each subscription item.
    for item in sub["items"]["data"]:
        item["current_period_end"] = period_end


class ExpiringSubscriptionIn(BaseModel):
    payment_method: str = "pm_card_visa"
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    renews_at: int = Field(description="current_period_end (unix seconds)")
    # Where the card is the default: the subscription's own default_payment_method, or the
    # customer's invoice_settings.default_payment_method (the subscription has none).
    default_on: str = Field(default="customer", pattern="^(customer|subscription)$")
    amount: int = Field(default=1200, ge=1)
    currency: str = "eur"
    name: str | None = "Stand-in Customer"
    email: str | None = "customer@example.com"
    preferred_locales: list[str] = Field(default_factory=list)


class CardExpiryIn(BaseModel):
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)


def expiring_subscription(core: Core, spec: ExpiringSubscriptionIn) -> dict[str, Any]:
    api = Ctx()
    cust = customers.create_customer(
        core,
        api,
        {
            "name": spec.name,
            "email": spec.email,
            "preferred_locales": spec.preferred_locales,
            "payment_method": spec.payment_method,
        },
    )
    pm_id = customers.attach(core, api, spec.payment_method, cust["id"], "payment_method")
    card = core.store.objects[pm_id]["card"]
    card.update(exp_month=spec.exp_month, exp_year=spec.exp_year)
    params: dict[str, Any] = {
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
    }
    if spec.default_on == "subscription":
        params["default_payment_method"] = pm_id
    else:
        customers.update_customer(
            core, api, {"invoice_settings": {"default_payment_method": pm_id}}, cust["id"]
        )
    sub = subscriptions.create_subscription(core, api, params)
    _set_period_end(sub, spec.renews_at)
    return {"customer": cust["id"], "subscription": sub["id"], "payment_method": pm_id}


def account_updater(core: Core, pm_id: str, spec: CardExpiryIn) -> dict[str, Any]:
    pm = fetch(core, pm_id, "pm", "PaymentMethod")
    previous = {"card": {"exp_month": pm["card"]["exp_month"], "exp_year": pm["card"]["exp_year"]}}
    pm["card"].update(exp_month=spec.exp_month, exp_year=spec.exp_year)
    # The network's update, not an API request: event.request has null fields.
    Ctx().emit(core, "payment_method.automatically_updated", pm, previous)
    return pm


def renew(core: Core, sub_id: str) -> dict[str, Any]:
    """Bill the next period now, as Stripe's renewal does: a subscription_cycle invoice,
    finalized and charged off-session to the default card; the period moves on either way."""
    sub = fetch(core, sub_id, "sub", "subscription")
    cust = core.store.objects[sub["customer"]]
    automatic = Ctx()
    inv = invoice_shapes.cycle_invoice(cust, sub, sub["currency"])
    core.store.put(inv)
    sub["latest_invoice"] = inv["id"]
    for item in sub["items"]["data"]:
        start = item["current_period_end"]
        item.update(current_period_start=start, current_period_end=start + objects.MONTH)
    automatic.emit(core, "invoice.created", inv)
    invoices.finalize(core, automatic, inv, None)
    pm_id = invoices.pick_payment_method(core, inv) or ""
    if inv["status"] != "paid" and pm_id:
        try:
            invoices.attempt_payment(core, automatic, inv, pm_id, off_session=True)
        except StripeError:
            pass  # the decline is on the invoice (status open, attempt_count 1)
    return {"invoice": inv["id"], "status": inv["status"]}


def renewals_router(core: Core) -> APIRouter:
    router = APIRouter(prefix="/_standin")

    @router.post("/scenarios/expiring_subscription")
    def scenario(spec: ExpiringSubscriptionIn) -> dict[str, Any]:
        with core.store.lock:
            return expiring_subscription(core, spec)

    @router.post("/payment_methods/{pm_id}/account_updater")
    def updater(pm_id: str, spec: CardExpiryIn) -> dict[str, Any]:
        with core.store.lock:
            return account_updater(core, pm_id, spec)

    @router.post("/subscriptions/{sub_id}/renew")
    def renew_now(sub_id: str) -> dict[str, Any]:
        with core.store.lock:
            return renew(core, sub_id)

    return router
