"""Builders for Stripe objects in the shape of the current API version.

Shapes follow Stripe's API reference for 2025+ versions ("basil" onwards): invoices have no
top-level `subscription`, `charge` or `payment_intent`; the subscription lives at
`parent.subscription_details.subscription`, and billing periods live on subscription items.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from .state import Store, new_id, now

_NULL_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}
MONTH = 30 * 24 * 3600


def customer(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description") or None,
        "discount": None,
        "email": params.get("email") or None,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": params.get("name") or None,
        "next_invoice_sequence": 1,
        "phone": params.get("phone") or None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def product(name: str) -> dict[str, Any]:
    return {
        "id": new_id("prod", 14),
        "object": "product",
        "active": True,
        "created": now(),
        "description": None,
        "livemode": False,
        "metadata": {},
        "name": name,
        "type": "service",
    }


def price(currency: str, unit_amount: int, product_id: str, interval: str | None) -> dict[str, Any]:
    recurring = None
    if interval:
        recurring = {
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    return {
        "id": new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def subscription(
    customer_id: str, items: list[tuple[dict[str, Any], int]], default_pm: str | None
) -> dict[str, Any]:
    created = now()
    sub_id = new_id("sub")
    data = [
        {
            "id": new_id("si", 14),
            "object": "subscription_item",
            "created": created,
            "current_period_end": created + MONTH,
            "current_period_start": created,
            "discounts": [],
            "metadata": {},
            "price": copy.deepcopy(p),
            "quantity": qty,
            "subscription": sub_id,
            "tax_rates": [],
        }
        for p, qty in items
    ]
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": created,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": items[0][0]["currency"],
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": default_pm,
        "default_source": None,
        "description": None,
        "discounts": [],
        "ended_at": None,
        "items": {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "pause_collection": None,
        "start_date": created,
        "status": "active",
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }


def expand(store: Store, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Apply `expand[]` (https://docs.stripe.com/expand): replace ids by their objects."""
    result = copy.deepcopy(obj)
    for path in paths:
        _expand_path(store, result, path.split("."))
    return result


def _expand_path(store: Store, node: Any, parts: list[str]) -> None:
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    value = node.get(head)
    if rest:
        if isinstance(value, list):
            for item in value:
                _expand_path(store, item, rest)
        else:
            _expand_path(store, value, rest)
    elif isinstance(value, str) and value in store.objects:
        node[head] = copy.deepcopy(store.objects[value])
