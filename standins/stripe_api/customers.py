"""Customers and PaymentMethods."""

from __future__ import annotations

import copy
from typing import Any

from . import objects
from .cards import TEST_CARDS, TestCard, payment_method_object
from .core import Core, Ctx, apply_metadata, diff, fetch, require
from .errors import invalid, no_such
from .state import new_id, now


def card_for(core: Core, pm_id: str) -> TestCard:
    key = core.store.pm_cards.get(pm_id, pm_id)
    return TEST_CARDS[key]


def _clone_token(core: Core, ctx: Ctx, token: str, customer_id: str | None) -> dict[str, Any]:
    # Stripe test tokens such as pm_card_visa materialise as a new PaymentMethod on use.
    pm = payment_method_object(TEST_CARDS[token], new_id("pm"), now(), customer_id)
    core.store.put(pm)
    core.store.pm_cards[pm["id"]] = token
    if customer_id:
        core.store.token_clones[(customer_id, token)] = pm["id"]
        ctx.emit(core, "payment_method.attached", pm)
    return pm


def attach(core: Core, ctx: Ctx, pm_id: str, customer_id: str, param: str) -> str:
    """Attach `pm_id` (a stored PM or a test token) to the customer; return the PM id."""
    if pm_id in TEST_CARDS:
        existing = core.store.token_clones.get((customer_id, pm_id))
        if existing:
            return existing
        return str(_clone_token(core, ctx, pm_id, customer_id)["id"])
    pm = core.store.get(pm_id, "pm")
    if pm is None:
        raise no_such("PaymentMethod", pm_id, param)
    if pm["customer"] not in (None, customer_id):
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param=param,
        )
    if pm["customer"] is None:
        pm["customer"] = customer_id
        ctx.emit(core, "payment_method.attached", pm)
    return pm_id


def attached_pm(core: Core, ctx: Ctx, pm_id: str, customer_id: str, param: str) -> str:
    """Resolve a PM that must already belong to the customer (default payment methods)."""
    if pm_id in TEST_CARDS:
        return attach(core, ctx, pm_id, customer_id, param)
    pm = core.store.get(pm_id, "pm")
    if pm is None:
        raise no_such("PaymentMethod", pm_id, param)
    if pm["customer"] != customer_id:
        raise invalid(
            f"The customer does not have a payment method with the ID {pm_id}. "
            "The payment method must be attached to the customer.",
            param=param,
        )
    return pm_id


def _apply_customer_params(
    core: Core, ctx: Ctx, cust: dict[str, Any], params: dict[str, Any]
) -> None:
    for name in ("name", "email", "description", "phone"):
        if name in params:
            cust[name] = params[name] or None
    if "preferred_locales" in params:
        locales = params["preferred_locales"]
        cust["preferred_locales"] = [] if locales == "" else list(locales)
    if "address" in params:
        # Stripe: an address hash (city, country, line1, line2, postal_code, state); "" unsets.
        given = params["address"]
        keys = ("city", "country", "line1", "line2", "postal_code", "state")
        cust["address"] = (
            {k: (given.get(k) or None) for k in keys} if isinstance(given, dict) else None
        )
    apply_metadata(cust, params.get("metadata"))
    if params.get("payment_method"):
        attach(core, ctx, params["payment_method"], cust["id"], "payment_method")
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        pm_id = settings["default_payment_method"]
        cust["invoice_settings"]["default_payment_method"] = (
            attached_pm(core, ctx, pm_id, cust["id"], "invoice_settings[default_payment_method]")
            if pm_id
            else None
        )


def create_customer(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("payment_method") and params["payment_method"] not in TEST_CARDS:
        fetch(core, params["payment_method"], "pm", "PaymentMethod", "payment_method")
    cust = objects.customer(params)
    core.store.put(cust)
    try:
        _apply_customer_params(core, ctx, cust, params)
    except Exception:
        core.store.objects.pop(cust["id"], None)
        raise
    ctx.emit(core, "customer.created", cust)
    return cust


def update_customer(
    core: Core, ctx: Ctx, params: dict[str, Any], customer_id: str
) -> dict[str, Any]:
    cust = fetch(core, customer_id, "cus", "customer")
    before = copy.deepcopy(cust)
    _apply_customer_params(core, ctx, cust, params)
    prev = diff(before, cust)
    if prev:
        ctx.emit(core, "customer.updated", cust, prev)
    return cust


def retrieve_customer(
    core: Core, ctx: Ctx, params: dict[str, Any], customer_id: str
) -> dict[str, Any]:
    return fetch(core, customer_id, "cus", "customer")


def retrieve_payment_method(
    core: Core, ctx: Ctx, params: dict[str, Any], pm_id: str
) -> dict[str, Any]:
    if pm_id in TEST_CARDS:
        return _clone_token(core, ctx, pm_id, None)
    return fetch(core, pm_id, "pm", "PaymentMethod")


def attach_payment_method(
    core: Core, ctx: Ctx, params: dict[str, Any], pm_id: str
) -> dict[str, Any]:
    customer_id = require(params, "customer")
    fetch(core, customer_id, "cus", "customer", "customer")
    if pm_id in TEST_CARDS:
        # Each attach of a test token creates a fresh PaymentMethod, as on Stripe.
        return _clone_token(core, ctx, pm_id, customer_id)
    return core.store.objects[attach(core, ctx, pm_id, customer_id, "payment_method")]
