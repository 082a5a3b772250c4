"""The support console at /support: server-rendered pages over the ledger and the workflow.

Sessions hold no server state: the cookie is an issue time signed with a key derived from
DUNNING_SUPPORT_TOKEN (rotating the token logs everyone out). Each rendered page's CSRF token
is a fresh random nonce and its HMAC with that cookie; the nonce doubles as the request id of
the page's action forms, so a form posted twice (a double click, a browser retry, the back
button) applies its action once. Actions go through `starter.support.service`, so the
workflow's validator decides and its message is shown next to the form that was refused.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import importlib
import importlib.util
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from models.dunning import DunningState, GrantGraceResult
from models.settings import Settings
from starter.deps import (
    TemporalUnavailable,
    bounded,
    get_ledger,
    get_settings_from,
    get_temporal_client,
    request_timeout,
)
from starter.support import ledger_queries as lq
from starter.support import service as svc
from starter.support.console_auth import (
    GATE,
    MAX_FORM_BYTES,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleAuth,
    auth_of,
    checked_form,
    cookie_options,
    csrf_token,
    request_key,
    safe_next,
    session_of,
)
from starter.support.console_render import ENV, TEMPLATE_DIR

log = logging.getLogger("dunning.console")
FLASH_COOKIE = "dunning_console_flash"
# An Update waits for a worker to run the validator and the handler: allow more than a query.
ACTION_TIMEOUT_SECONDS = 15.0
REPORT_MODULE = "starter.support.report"
REPORT_PAGE_MODULE = "starter.support.report_page"
HEADERS = {
    # One script of our own (times in the reader's zone), styles from our own stylesheet,
    # forms only to ourselves.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages carry customer data: never keep them in a shared or browser cache.
    "Cache-Control": "no-store",
}
# (action, the validator's message, the form as typed): re-rendered next to that form.
Failed = tuple[str, str, dict[str, str]]
EXPIRED = "The form was stale or not from this console. Reload the page and try again."


def install_console(app: FastAPI, settings: Settings) -> None:
    """Mount the console on an app built by `starter.app.create_app` (idempotent)."""
    token = settings.dunning_support_token
    if not token:
        if not settings.dev_mode:
            raise RuntimeError(
                "DUNNING_SUPPORT_TOKEN is not set: refusing to serve the support console"
                " (/support) without authentication; set it, or DUNNING_ENV=dev for local use"
            )
        log.warning("DUNNING_SUPPORT_TOKEN is not set: the support console is open (dev mode)")
    # Open dev console: a per-process random key, so its CSRF tokens are still unforgeable.
    key = hmac.digest(token.encode(), b"dunning-console/v1", "sha256") if token else None
    if not hasattr(app.state, "console"):  # a second call only replaces the key
        app.include_router(console_router())
    app.state.console = ConsoleAuth(key=key or secrets.token_bytes(32), open=not token)


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = session_of(request)
    # A new nonce per rendering: it is the request id of what this page's forms submit.
    html = ENV.get_template(template).render(
        csrf=csrf_token(auth_of(request), session, secrets.token_hex(16)) if session else "",
        signed_in=session is not None and session != "open",
        report=importlib.util.find_spec(REPORT_MODULE) is not None,
        **context,
    )
    return HTMLResponse(html, status, headers=HEADERS)


def _message(request: Request, status: int, title: str, text: str) -> HTMLResponse:
    return _page(request, "message.html.j2", status, title=title, text=text)


def console_router() -> APIRouter:
    router = APIRouter(prefix="/support", include_in_schema=False)

    @router.get("/console.css")
    async def stylesheet() -> FileResponse:
        return FileResponse(TEMPLATE_DIR / "console.css", media_type="text/css")

    @router.get("/console.js")
    async def script() -> FileResponse:
        return FileResponse(TEMPLATE_DIR / "console.js", media_type="text/javascript")

    @router.get("/login")
    async def loginchecked_form(request: Request, next: str = "/support") -> Response:
        if session_of(request):
            return RedirectResponse(safe_next(next), status_code=303)
        return _page(request, "login.html.j2", next=safe_next(next), error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        # No CSRF token here: only someone who already knows the support token can log in.
        form = dict(parse_qsl((await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace")))
        token = get_settings_from(request).dunning_support_token.encode()
        nxt, auth = safe_next(form.get("next", "/support")), auth_of(request)
        if not hmac.compare_digest(form.get("token", "").encode(), token):
            return _page(request, "login.html.j2", 401, next=nxt, error="Wrong token.")
        response, issued = RedirectResponse(nxt, status_code=303), str(int(time.time()))
        session = f"{issued}.{auth.sign('session', issued)}"
        response.set_cookie(SESSION_COOKIE, session, SESSION_SECONDS, **cookie_options(request))
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        if await checked_form(request) is None:
            return _message(request, 403, "Form expired", EXPIRED)
        response = RedirectResponse("/support/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/support")
        return response

    @router.get("", dependencies=GATE)
    async def search(
        request: Request, q: str = "", segment: str = "", policy: str = "", variant: str = ""
    ) -> Response:
        results = await lq.run_query(get_ledger(request), lambda s: lq.find_cases(s, q))
        chosen = {"segment": segment.strip(), "policy": policy.strip(), "variant": variant.strip()}
        attention, problem = await _attention(request, chosen) if not q.strip() else ([], "")
        return _page(
            request, "search.html.j2", q=q, results=results, attention=attention,
            problem=problem, filters=chosen,
        )  # fmt: skip

    @router.get("/report", dependencies=GATE)
    async def report(request: Request) -> Response:
        if importlib.util.find_spec(REPORT_MODULE) is None:
            return _message(request, 404, "Not available", "The recovery report is not installed.")
        # Imported on use: the report module is optional for the console.
        query = importlib.import_module(REPORT_PAGE_MODULE).PageQuery.parse(request.query_params)
        figures = await lq.run_query(get_ledger(request), query.compute)
        return _page(request, "report.html.j2", query=query, page=figures)

    @router.get("/cases/{invoice_id}", dependencies=GATE)
    async def case_page(request: Request, invoice_id: str) -> Response:
        return await _case(request, invoice_id)

    @router.post("/cases/{invoice_id}/{action}", dependencies=GATE)
    async def case_action(request: Request, invoice_id: str, action: svc.Action) -> Response:
        form = await checked_form(request)
        if form is None:
            return _message(request, 403, "Form expired", EXPIRED)
        if action == "grace" and not form.get("days", "").strip().isdigit():
            return _back(request, invoice_id, failed=(action, "days must be a whole number", form))
        try:
            client = await get_temporal_client(request)
            payload = svc.action_input(action, **form)
            call = svc.run_action(client, invoice_id, action, payload, request_key(form))
            result = await bounded(call, ACTION_TIMEOUT_SECONDS)
        except svc.ActionRejected as err:
            return _back(request, invoice_id, failed=(action, str(err), form))
        except svc.CaseNotFound as err:
            return _message(request, 404, "No such case", str(err))
        except TemporalUnavailable:
            problem = "Temporal did not answer in time; reload to see whether this took effect."
            return _back(request, invoice_id, failed=(action, problem, form))
        deadline = None
        if isinstance(result, GrantGraceResult) and result.new_final_deadline:
            deadline = result.new_final_deadline.isoformat()
        return _back(request, invoice_id, message=f"{result.message}.", deadline=deadline)

    return router


def _back(
    request: Request,
    invoice_id: str,
    message: str = "",
    failed: Failed | None = None,
    deadline: str | None = None,
) -> Response:
    """POST-redirect-GET, refused or done: a refresh never posts the form again. What the
    case page shows once (the result, or the refusal beside its form with what was typed)
    rides in a short-lived signed cookie."""
    response = RedirectResponse(f"/support/cases/{quote(invoice_id)}", status_code=303)
    if failed is not None:
        action, problem, form = failed
        failed = (action, problem, {k: v for k, v in form.items() if k != "csrf"})
    body = json.dumps({"message": message, "failed": failed, "deadline": deadline}).encode()
    encoded = base64.urlsafe_b64encode(body).decode()
    flash = f"{encoded}.{auth_of(request).sign('flash', encoded)}"
    response.set_cookie(FLASH_COOKIE, flash, 60, **cookie_options(request))
    return response


async def _attention(
    request: Request, filters: dict[str, str]
) -> tuple[list[svc.CaseSummary], str]:
    """Running cases, the soonest next action first: where support starts its day (of one
    segment, policy or experiment arm when the filters say so)."""
    try:
        query = svc.list_query(
            segment=filters.get("segment") or None,
            policy=filters.get("policy") or None,
            variant=filters.get("variant") or None,
        )
    except ValueError as err:  # a filter with a quote: refused, as `dunning list` does
        return [], f"Filter refused: {err}."
    try:
        client = await get_temporal_client(request)
        query += " AND ExecutionStatus = 'Running'"
        cases = await bounded(svc.list_cases(client, query), request_timeout(request))
    except (TemporalUnavailable, RPCError, RuntimeError) as err:
        return [], (
            "Open cases are listed from Temporal, which did not answer"
            f" ({err.__class__.__name__}). Search still works."
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(cases, key=lambda c: (c.status != "paused", c.next_action_at or far)), ""


async def _case(request: Request, invoice_id: str) -> Response:
    """The case page; a refused action (from the flash) is shown next to its form."""
    (case, timeline), (state, problem) = await asyncio.gather(
        lq.run_query(get_ledger(request), lambda s: lq.case_view(s, invoice_id)),
        _live_status(request, invoice_id),
    )
    if case is None and state is None:
        text = f"no dunning case exists for invoice {invoice_id}"
        return _message(request, 404, "No such case", text)
    settings = get_settings_from(request)
    ui = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace)}"
    # A flash is only shown once: on the GET that follows the action's redirect.
    flash = json.loads(base64.urlsafe_b64decode(_flash(request) or b"e30="))  # e30= is {}
    failed = flash.get("failed")
    response = _page(
        request,
        "case.html.j2",
        200,
        invoice_id=invoice_id,
        case=case,
        timeline=timeline,
        state=state,
        problem=problem,
        failed=tuple(failed) if failed else None,
        flash=flash.get("message") or None,
        flash_deadline=datetime.fromisoformat(flash["deadline"]) if flash.get("deadline") else None,
        temporal_url=f"{ui}/workflows/{quote('dunning-' + invoice_id, safe='')}",
    )
    response.delete_cookie(FLASH_COOKIE, path="/support")
    return response


def _flash(request: Request) -> str | None:
    return auth_of(request).unsigned("flash", request.cookies.get(FLASH_COOKIE, ""))


async def _live_status(request: Request, invoice_id: str) -> tuple[DunningState | None, str]:
    """(state, "") if the workflow answered, else (None, "missing" or why it did not)."""
    try:
        client = await get_temporal_client(request)
        return await bounded(svc.case_status(client, invoice_id), request_timeout(request)), ""
    except svc.CaseNotFound:
        return None, "missing"
    except (TemporalUnavailable, RPCError, WorkflowQueryFailedError, RuntimeError) as err:
        # A query also needs a worker: with none polling, it times out the same way.
        return None, err.__class__.__name__
