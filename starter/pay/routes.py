"""The payment page's routes: `/pay/{token}` and the actions it posts.

Every answer to a token we did not sign (tampered, unknown key, malformed) is the same
neutral 404 page, and an expired one the same page with 410: nothing tells a guesser whether
an invoice exists. Actions are POST-redirect-GET: the result (or the validator's refusal) is
shown once from a short-lived signed cookie, and a refresh never repeats the action.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import stripe
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from models.customer_actions import CUSTOMER_NEW_CARD, CustomerNewCardInput
from models.dunning import DunningState
from models.pay_links import InvalidLink, verify
from models.settings import Settings
from starter.deps import (
    TemporalUnavailable,
    get_ledger,
    get_settings_from,
    get_temporal_client,
    request_timeout,
)
from starter.pay import actions as act
from starter.pay import feedback as fb
from starter.pay import view
from starter.pay.forms import checked_form, clear_flash, new_nonce, set_flash, take_flash
from starter.pay.render import TEMPLATE_DIR, Locale, render
from starter.support.service import ActionRejected, CaseNotFound

# Query failures that mean "ask again later", not "no such case".
UNANSWERED = (TemporalUnavailable, RPCError, WorkflowQueryFailedError, RuntimeError)


def _lang(request: Request) -> str | None:
    lang = request.query_params.get("lang", "")
    return lang if lang in ("en", "es") else None


def _suffix(lang: str | None) -> str:
    return f"?{urlencode({'lang': lang})}" if lang else ""


def _invalid(request: Request, problem: str) -> Response:
    return render(Locale(_lang(request)), "invalid.html.j2", 410 if problem == "expired" else 404)


def _unavailable(locale: Locale) -> Response:
    return render(locale, "unavailable.html.j2", 503)


def _back(request: Request, token: str, **flash: Any) -> Response:
    response = RedirectResponse(f"/pay/{token}{_suffix(_lang(request))}", status_code=303)
    secure = request.url.scheme == "https"
    set_flash(response, get_settings_from(request), token, secure, **flash)
    return response


async def _resolve(request: Request, token: str) -> tuple[str, view.CaseFacts] | Response:
    try:
        invoice_id = verify(get_settings_from(request), token)
    except InvalidLink as err:
        return _invalid(request, err.problem)
    facts = await view.case_facts(get_ledger(request), invoice_id)
    return (invoice_id, facts) if facts is not None else _invalid(request, "unknown")


async def _state(request: Request, invoice_id: str) -> DunningState | None:
    """The live state; None for a case Temporal no longer knows (the ledger then decides)."""
    try:
        client = await get_temporal_client(request)
        return await view.live_state(client, invoice_id, request_timeout(request))
    except CaseNotFound:
        return None


async def _show(request: Request, token: str, invoice_id: str, facts: view.CaseFacts) -> Response:
    settings = get_settings_from(request)
    lang = _lang(request)
    invoice_read = asyncio.create_task(view.invoice_facts(settings, invoice_id))
    try:
        state = None if facts.outcome else await _state(request, invoice_id)
    except UNANSWERED:
        invoice = await invoice_read
        return _unavailable(Locale(lang or facts.locale or invoice.locale, facts.timezone))
    invoice = await invoice_read
    locale = Locale(lang or facts.locale or invoice.locale, facts.timezone)
    flash = take_flash(request, settings, token)
    common: dict[str, Any] = {
        "token": token,
        "suffix": _suffix(lang),
        "facts": facts,
        "invoice": invoice,
        "flash": flash,
        "nonce": new_nonce(settings, token),
    }
    outcome = view.closed_outcome(facts, state)
    if outcome is not None or state is None:
        response = render(
            locale,
            "closed.html.j2",
            outcome=outcome or "ended",
            ask=view.asks_feedback(facts, outcome),
            reasons=fb.REASONS,
            max_text=fb.MAX_TEXT,
            **common,
        )
    else:
        rules = view.self_service(settings, state.policy)
        first, last = view.more_time_window(state, rules, datetime.now(UTC).date())
        response = render(
            locale,
            "case.html.j2",
            state=state,
            can_pause=rules.allow_pause and facts.subscription_id is not None,
            can_more_time=view.can_ask_more_time(state, rules),
            first_day=first,
            last_day=last,
            charging=flash.get("action") == "new_card" and not flash.get("refused"),
            confirm_cancel=request.url.path.endswith("/cancel"),
            **common,
        )
    clear_flash(response, token)
    return response


def pay_router() -> APIRouter:
    router = APIRouter(prefix="/pay", include_in_schema=False)

    @router.get("/static/pay.css")
    async def stylesheet() -> FileResponse:
        return FileResponse(TEMPLATE_DIR / "pay.css", media_type="text/css")

    @router.get("/static/card.js")
    async def card_script() -> FileResponse:
        return FileResponse(TEMPLATE_DIR / "card.js", media_type="text/javascript")

    @router.get("/{token}")
    @router.get("/{token}/cancel")
    async def page(request: Request, token: str) -> Response:
        resolved = await _resolve(request, token)
        if isinstance(resolved, Response):
            return resolved
        return await _show(request, token, *resolved)

    @router.post("/{token}/act/{action}")
    async def action(request: Request, token: str, action: act.Action) -> Response:
        resolved = await _resolve(request, token)
        if isinstance(resolved, Response):
            return resolved
        invoice_id, _ = resolved
        form = await checked_form(request, get_settings_from(request), token)
        if form is None:
            return _back(request, token, action=act.UPDATES[action], refused="stale")
        try:
            payload = act.action_input(action, form)
        except act.BadForm:
            return _back(request, token, action=act.UPDATES[action], refused="bad_form")
        return await _run(request, token, invoice_id, act.UPDATES[action], payload)

    @router.get("/{token}/card")
    async def card(request: Request, token: str) -> Response:
        resolved = await _resolve(request, token)
        if isinstance(resolved, Response):
            return resolved
        invoice_id, facts = resolved
        return await _card(request, token, invoice_id, facts)

    @router.get("/{token}/card-return")
    async def card_return(request: Request, token: str, setup_intent: str = "") -> Response:
        resolved = await _resolve(request, token)
        if isinstance(resolved, Response):
            return resolved
        invoice_id, facts = resolved
        settings = get_settings_from(request)
        try:
            pm = await act.confirmed_card(settings, setup_intent, facts.customer_id)
        except (act.CardNotUsable, stripe.StripeError):
            return _back(request, token, action="new_card", refused="card_not_saved")
        # The SetupIntent names the click: coming back to this URL again is the same action.
        payload = CustomerNewCardInput(request_id=setup_intent, payment_method_id=pm)
        return await _run(request, token, invoice_id, CUSTOMER_NEW_CARD, payload)

    @router.post("/{token}/feedback")
    async def feedback(request: Request, token: str) -> Response:
        resolved = await _resolve(request, token)
        if isinstance(resolved, Response):
            return resolved
        invoice_id, facts = resolved
        form = await checked_form(request, get_settings_from(request), token)
        if form is None:
            return _back(request, token, action="feedback", refused="stale")
        try:
            state = None if facts.outcome else await _state(request, invoice_id)
        except UNANSWERED:
            return _unavailable(Locale(_lang(request) or facts.locale, facts.timezone))
        outcome = view.closed_outcome(facts, state)
        if outcome not in view.FEEDBACK_OUTCOMES:
            return _back(request, token, action="feedback", refused="not_closed")
        answer = fb.parse(form)
        if answer is None:
            return _back(request, token, action="feedback", refused="bad_form")
        stored = await fb.store(get_ledger(request), invoice_id, outcome, *answer)
        return _back(request, token, action="feedback", refused=None if stored else "duplicate")

    return router


async def _run(request: Request, token: str, invoice_id: str, name: str, payload: Any) -> Response:
    try:
        client = await get_temporal_client(request)
        result = await act.run_update(client, invoice_id, name, payload)
    except ActionRejected as err:
        return _back(request, token, action=name, refused="validator", message=str(err))
    except CaseNotFound:
        return _invalid(request, "unknown")
    except TemporalUnavailable:
        return _unavailable(Locale(_lang(request)))
    until = getattr(payload, "until", None)
    return _back(
        request, token, action=result.action, message=result.message,
        until=until.isoformat() if until else None,
    )  # fmt: skip


async def _card(request: Request, token: str, invoice_id: str, facts: view.CaseFacts) -> Response:
    """Start a card update: Stripe.js in production, the stand-in's test page in dev, else
    Stripe's hosted invoice page (which also takes a new card)."""
    settings: Settings = get_settings_from(request)
    if facts.outcome is not None:
        return RedirectResponse(f"/pay/{token}{_suffix(_lang(request))}", status_code=303)
    if not settings.stripe_publishable_key and not settings.stripe_api_base:
        invoice = await view.invoice_facts(settings, invoice_id)
        target = invoice.hosted_invoice_url or f"/pay/{token}"
        return RedirectResponse(target, status_code=303)
    try:
        si = await act.create_setup_intent(settings, facts.customer_id, invoice_id)
    except stripe.StripeError:
        return _back(request, token, action="new_card", refused="card_unavailable")
    base = settings.dunning_public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return_url = f"{base}/pay/{token}/card-return"
    if settings.stripe_publishable_key:
        invoice = await view.invoice_facts(settings, invoice_id)
        locale = Locale(_lang(request) or facts.locale or invoice.locale, facts.timezone)
        return render(
            locale,
            "card.html.j2",
            stripe_js=True,
            token=token,
            suffix=_suffix(_lang(request)),
            publishable_key=settings.stripe_publishable_key,
            client_secret=si.client_secret,
            return_url=return_url,
        )
    # Dev and tests: the Stripe stand-in's page confirms the SetupIntent with a test card.
    query = urlencode({"client_secret": si.client_secret, "return_url": return_url})
    page = f"{settings.stripe_api_base}/_standin/setup_intents/{si.id}/test_page?{query}"
    return RedirectResponse(page, status_code=303)
