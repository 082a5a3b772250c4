"""SetupIntents (https://docs.stripe.com/api/setup_intents) and a test confirmation page.

In production the customer confirms a SetupIntent in Stripe.js' Payment Element, which then
sends the browser to the `return_url` with `setup_intent`, `setup_intent_client_secret` and
`redirect_status` in the query. Without Stripe.js, the stand-in's page at
`/_standin/setup_intents/{id}/test_page?client_secret=...&return_url=...` plays that part: the
customer picks one of Stripe's test cards, the stand-in confirms the SetupIntent (attaching the
card to the customer, as Stripe does) and redirects the same way.

Cards: Stripe validates a card when a SetupIntent saves it, so its decline test cards fail
confirmation (`setup_intent.setup_failed`), except 4000 0000 0000 0341 (pm_card_chargeCustomerFail),
which Stripe documents as attaching fine and failing only when charged.
"""

from __future__ import annotations

import copy
import html
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from . import customers
from .cards import TEST_CARDS
from .core import Core, Ctx, apply_metadata, as_bool, diff, fetch
from .errors import StripeError, invalid
from .state import new_id, now

ATTACHES_THEN_FAILS = "pm_card_chargeCustomerFail"
PAGE_CARDS = (
    "pm_card_visa",
    "pm_card_mastercard",
    "pm_card_chargeCustomerFail",
    "pm_card_chargeDeclined",
)


def _setup_intent(params: dict[str, Any]) -> dict[str, Any]:
    si_id = new_id("seti")
    return {
        "id": si_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{si_id}_secret_{secrets.token_urlsafe(18)}",
        "created": now(),
        "customer": params.get("customer") or None,
        "description": params.get("description") or None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": list(params.get("payment_method_types") or ["card"]),
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": params.get("usage") or "off_session",
    }


def create_setup_intent(core: Core, ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("customer"):
        fetch(core, params["customer"], "cus", "customer", "customer")
    if params.get("usage") not in (None, "", "off_session", "on_session"):
        raise invalid("Invalid usage: must be one of off_session or on_session", param="usage")
    si = _setup_intent(params)
    apply_metadata(si, params.get("metadata"))
    core.store.put(si)
    ctx.emit(core, "setup_intent.created", si)
    if params.get("payment_method"):
        si["payment_method"] = params["payment_method"]
        si["status"] = "requires_confirmation"
    if as_bool(params, "confirm", False):
        return _confirm(core, ctx, si, params)
    return si


def retrieve_setup_intent(
    core: Core, ctx: Ctx, params: dict[str, Any], si_id: str
) -> dict[str, Any]:
    return fetch(core, si_id, "seti", "setup_intent")


def confirm_setup_intent(
    core: Core, ctx: Ctx, params: dict[str, Any], si_id: str
) -> dict[str, Any]:
    return _confirm(core, ctx, fetch(core, si_id, "seti", "setup_intent"), params)


def _confirm(core: Core, ctx: Ctx, si: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    if si["status"] in ("succeeded", "canceled"):
        raise invalid(
            f"You cannot confirm this SetupIntent because it has a status of {si['status']}.",
            code="setup_intent_unexpected_state",
        )
    pm = params.get("payment_method") or si["payment_method"]
    if not pm:
        raise invalid(
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            code="setup_intent_unexpected_state",
        )
    before = copy.deepcopy(si)
    card = TEST_CARDS.get(core.store.pm_cards.get(pm, pm))
    if card is not None and card.decline is not None and pm != ATTACHES_THEN_FAILS:
        decline = card.decline
        error = {
            "code": decline.code,
            "decline_code": decline.decline_code,
            "message": decline.message,
            "type": "card_error",
        }
        si.update(status="requires_payment_method", last_setup_error=error, payment_method=None)
        ctx.emit(core, "setup_intent.setup_failed", si, diff(before, si))
        raise StripeError(
            402,
            "card_error",
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            setup_intent=copy.deepcopy(si),
            saved=True,
        )
    if si["customer"]:
        pm = customers.attach(core, ctx, pm, si["customer"], "payment_method")
    elif pm in TEST_CARDS:
        pm = customers.retrieve_payment_method(core, ctx, {}, pm)["id"]
    si.update(status="succeeded", payment_method=pm, last_setup_error=None)
    ctx.emit(core, "setup_intent.succeeded", si, diff(before, si))
    return si


API: list[tuple[str, str, Callable[..., dict[str, Any]]]] = [
    ("POST", "setup_intents", create_setup_intent),
    ("GET", r"setup_intents/([A-Za-z0-9_]+)", retrieve_setup_intent),
    ("POST", r"setup_intents/([A-Za-z0-9_]+)/confirm", confirm_setup_intent),
]


def _page(si_id: str, client_secret: str, return_url: str, error: str = "") -> HTMLResponse:
    options = "".join(
        f'<label><input type="radio" name="payment_method" value="{c}"'
        f"{' checked' if c == 'pm_card_visa' else ''}> {c} (…{TEST_CARDS[c].last4})</label><br>"
        for c in PAGE_CARDS
    )
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
        for k, v in (("client_secret", client_secret), ("return_url", return_url))
    )
    problem = f'<p role="alert" id="error">{html.escape(error)}</p>' if error else ""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Stripe stand-in: test card</title></head><body>"
        f"<h1>Test card for {html.escape(si_id)}</h1>{problem}"
        '<p>Stripe stand-in (test mode): no real card is used.</p><form method="post" id="card">'
        f"<fieldset><legend>Test card</legend>{options}</fieldset>{hidden}"
        '<button type="submit">Save card</button></form></body></html>'
    )
    return HTMLResponse(body, 402 if error else 200)


def test_page_router(core: Core) -> APIRouter:
    router = APIRouter(prefix="/_standin/setup_intents")

    def _checked(si_id: str, client_secret: str, return_url: str) -> dict[str, Any] | None:
        si = core.store.get(si_id, "seti")
        scheme = urlsplit(return_url).scheme
        if si is None or si["client_secret"] != client_secret or scheme not in ("http", "https"):
            return None
        return si

    @router.get("/{si_id}/test_page")
    async def page(si_id: str, client_secret: str = "", return_url: str = "") -> Response:
        if _checked(si_id, client_secret, return_url) is None:
            return HTMLResponse("<h1>Unknown SetupIntent or client secret</h1>", 404)
        return _page(si_id, client_secret, return_url)

    @router.post("/{si_id}/test_page")
    async def confirm(si_id: str, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        secret, return_url = form.get("client_secret", ""), form.get("return_url", "")
        with core.store.lock:
            si = _checked(si_id, secret, return_url)
            if si is None:
                return HTMLResponse("<h1>Unknown SetupIntent or client secret</h1>", 404)
            try:
                _confirm(core, Ctx(), si, {"payment_method": form.get("payment_method")})
            except StripeError as exc:
                return _page(si_id, secret, return_url, exc.message)
        query = {
            "setup_intent": si_id,
            "setup_intent_client_secret": secret,
            "redirect_status": "succeeded",
        }
        joiner = "&" if urlsplit(return_url).query else "?"
        return RedirectResponse(f"{return_url}{joiner}{urlencode(query)}", status_code=303)

    return router
