"""Prices and Subscriptions."""

from __future__ import annotations

import copy
from typing import Any

from . import objects
from .core import Core, Ctx, apply_metadata, as_int, diff, fetch, require
from .customers import attached_pm
from .errors import invalid, no_such
from .state import now


def _price_from_data(core: Core, data: dict[str, Any], param: str) -> dict[str, Any]:
    currency = str(require(data, "currency")).lower()
    unit_amount = as_int(data, "unit_amount")
    if unit_amount is None:
        raise invalid(
            f"Missing required param: {param}[unit_amount].", param=param, code="parameter_missing"
        )
    product_id = data.get("product")
    if product_id:
        fetch(core, product_id, "prod", "product", f"{param}[product]")
    else:
        name = (data.get("product_data") or {}).get("name") or "Stand-in product"
        product_id = core.store.put(objects.product(name))["id"]
    recurring = data.get("recurring") or {}
    price = objects.price(currency, unit_amount, product_id, recurring.get("interval"))
    return core.store.put(price)


def create_price(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    return _price_from_data(core, params, "price")


def create_subscription(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    customer_id = require(params, "customer")
    cust = fetch(core, customer_id, "cus", "customer", "customer")
    items = params.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("Missing required param: items.", param="items", code="parameter_missing")
    resolved: list[tuple[dict[str, Any], int]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid("Invalid array", param=f"items[{i}]")
        if item.get("price"):
            price = fetch(core, item["price"], "price", "price", f"items[{i}][price]")
        elif isinstance(item.get("price_data"), dict):
            data = dict(item["price_data"])
            data.setdefault("recurring", {"interval": "month"})
            price = _price_from_data(core, data, f"items[{i}][price_data]")
        else:
            raise invalid(
                "Missing required param: items[0][price].",
                param=f"items[{i}][price]",
                code="parameter_missing",
            )
        resolved.append((price, as_int(item, "quantity", 1) or 1))
    pm = params.get("default_payment_method")
    default_pm = attached_pm(core, ctx, pm, cust["id"], "default_payment_method") if pm else None
    sub = objects.subscription(cust["id"], resolved, default_pm)
    apply_metadata(sub, params.get("metadata"))
    if params.get("description"):
        sub["description"] = params["description"]
    if params.get("collection_method"):
        sub["collection_method"] = params["collection_method"]
    core.store.put(sub)
    ctx.emit(core, "customer.subscription.created", sub)
    return sub


def retrieve_subscription(
    core: Core, ctx: Ctx, params: dict[str, Any], sub_id: str
) -> dict[str, Any]:
    return fetch(core, sub_id, "sub", "subscription")


def update_subscription(
    core: Core, ctx: Ctx, params: dict[str, Any], sub_id: str
) -> dict[str, Any]:
    sub = fetch(core, sub_id, "sub", "subscription")
    if sub["status"] == "canceled" and set(params) - {"metadata", "cancellation_details", "expand"}:
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    before = copy.deepcopy(sub)
    apply_metadata(sub, params.get("metadata"))
    if "default_payment_method" in params:
        pm = params["default_payment_method"]
        sub["default_payment_method"] = (
            attached_pm(core, ctx, pm, sub["customer"], "default_payment_method") if pm else None
        )
    if "description" in params:
        sub["description"] = params["description"] or None
    if "pause_collection" in params:
        sub["pause_collection"] = _pause_collection(params["pause_collection"])
    prev = diff(before, sub)
    if prev:
        ctx.emit(core, "customer.subscription.updated", sub, prev)
    return sub


PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


def _pause_collection(value: Any) -> dict[str, Any] | None:
    """Stripe: `pause_collection[behavior]` (required) and optional `resumes_at`; an empty
    string resumes collection."""
    if value in ("", None):
        return None
    if not isinstance(value, dict) or value.get("behavior") not in PAUSE_BEHAVIORS:
        raise invalid(
            f"Invalid pause_collection[behavior]: must be one of {', '.join(PAUSE_BEHAVIORS)}",
            param="pause_collection[behavior]",
        )
    resumes = as_int(value, "resumes_at")
    if resumes is not None and resumes <= now():
        raise invalid(
            "pause_collection[resumes_at] must be in the future",
            param="pause_collection[resumes_at]",
        )
    return {"behavior": value["behavior"], "resumes_at": resumes}


def set_status(core: Core, ctx: Ctx, sub: dict[str, Any], status: str) -> None:
    if sub["status"] == status or sub["status"] == "canceled":
        return
    previous = sub["status"]
    sub["status"] = status
    ctx.emit(core, "customer.subscription.updated", sub, {"status": previous})


def cancel_subscription(
    core: Core, ctx: Ctx, params: dict[str, Any], sub_id: str
) -> dict[str, Any]:
    sub = fetch(core, sub_id, "sub", "subscription")
    if sub["status"] == "canceled":
        # Stripe treats a canceled subscription as deleted: cancelling again answers
        # "No such subscription" (stripe/stripe-go#1887, confirmed by Stripe as expected).
        raise no_such("subscription", sub_id)
    ts = now()
    sub["status"] = "canceled"
    sub["canceled_at"] = ts
    sub["ended_at"] = ts
    details = params.get("cancellation_details") or {}
    sub["cancellation_details"] = {
        "comment": details.get("comment") or None,
        "feedback": details.get("feedback") or None,
        "reason": "cancellation_requested",
    }
    ctx.emit(core, "customer.subscription.deleted", sub)
    return sub
