"""The HTTP surface: `/v1/...` as Stripe serves it, plus `/_standin/...` controls."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from . import (
    customers,
    idempotency,
    invoice_payments,
    invoices,
    renewals,
    setup_intents,
    subscriptions,
)
from .config import StripeStandinConfig
from .control import control_router
from .core import Core, Ctx
from .errors import StripeError, api_error, auth_error, invalid
from .forms import FormError, decode
from .objects import expand
from .state import Fault, new_id

Handler = Callable[..., dict[str, Any]]
_ID = r"([A-Za-z0-9_]+)"
_TABLE: list[tuple[str, str, Handler]] = [
    ("POST", "customers", customers.create_customer),
    ("GET", f"customers/{_ID}", customers.retrieve_customer),
    ("POST", f"customers/{_ID}", customers.update_customer),
    ("GET", f"payment_methods/{_ID}", customers.retrieve_payment_method),
    ("POST", f"payment_methods/{_ID}/attach", customers.attach_payment_method),
    ("POST", "prices", subscriptions.create_price),
    ("GET", "subscriptions", renewals.list_subscriptions),
    ("POST", "subscriptions", subscriptions.create_subscription),
    ("GET", f"subscriptions/{_ID}", subscriptions.retrieve_subscription),
    ("POST", f"subscriptions/{_ID}", subscriptions.update_subscription),
    ("DELETE", f"subscriptions/{_ID}", subscriptions.cancel_subscription),
    ("GET", "invoices", invoices.list_invoices),
    ("POST", "invoices", invoices.create_invoice),
    ("GET", f"invoices/{_ID}", invoices.retrieve_invoice),
    ("POST", f"invoices/{_ID}/finalize", invoices.finalize_invoice),
    ("POST", f"invoices/{_ID}/pay", invoices.pay_invoice),
    ("POST", f"invoices/{_ID}/void", invoices.void_invoice),
    ("POST", f"invoices/{_ID}/mark_uncollectible", invoices.mark_uncollectible),
    ("POST", "invoiceitems", invoices.create_invoice_item),
    ("GET", "invoice_payments", invoice_payments.list_invoice_payments),
    *setup_intents.API,
]
ROUTES = [(m, re.compile(f"^/v1/{p}$"), h) for m, p, h in _TABLE]


def _api_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        # curl -u sk_test_...: sends the key as the Basic-auth user name.
        try:
            value = base64.b64decode(value).decode().split(":", 1)[0]
        except ValueError:
            value = ""
    elif scheme.lower() != "bearer":
        value = ""
    value = value.strip()
    if not value:
        raise auth_error(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://docs.stripe.com/api#authentication for details, "
            "or we can help at https://support.stripe.com/."
        )
    if not value.startswith(("sk_test_", "rk_test_")):
        raise auth_error(f"Invalid API Key provided: {value[:8]}{'*' * 4}{value[-4:]}")
    return value


def _fault_error(fault: Fault) -> StripeError:
    if fault.mode == "500":
        return StripeError(
            500,
            "api_error",
            "An unknown error occurred (injected by stand-in).",
            headers={"Stripe-Should-Retry": "true"},
        )
    if fault.mode == "lock_timeout":
        return StripeError(
            429,
            "invalid_request_error",
            "This object cannot be accessed right now because another API request or Stripe "
            "process is currently accessing it. If you see this error intermittently, retry "
            "the request. If you see this error frequently and are making multiple concurrent "
            "requests to a single object, make your requests serially or at a lower rate.",
            code="lock_timeout",
            headers={"Stripe-Should-Retry": "true"},
        )
    return StripeError(
        429,
        "invalid_request_error",
        "Too many requests hit the API too quickly. We recommend an exponential backoff of "
        "your requests.",
        code="rate_limit",
    )


def _route(method: str, path: str) -> tuple[Handler, tuple[str, ...]]:
    for m, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and m == method:
            return handler, match.groups()
    raise invalid(
        f"Unrecognized request URL ({method}: {path}). Please see "
        "https://docs.stripe.com or we can help at https://support.stripe.com/.",
        status=404,
    )


def _run(core: Core, ctx: Ctx, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
    handler, ids = _route(method, path)
    try:
        with core.store.lock:
            obj = handler(core, ctx, params, *ids)
            paths = params.get("expand") or []
            return 200, expand(core.store, obj, list(paths) if isinstance(paths, list) else [])
    except StripeError as exc:
        return exc.status, exc
    except Exception as exc:  # Stripe answers unexpected failures with an api_error 500
        return 500, api_error(f"Internal error in stand-in: {type(exc).__name__}: {exc}")


def _respond(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_v1(core: Core, request: Request) -> Response:
    request_id = request.state.request_id
    method, path = request.method, request.url.path
    key = request.headers.get("idempotency-key") if method == "POST" else None
    entry: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "idempotency_key": key,
        "status": None,
        "replayed": False,
        "fault": None,
    }
    with core.store.lock:
        core.store.requests.append(entry)
    headers = {"Stripe-Version": core.config.api_version}
    hang: float | None = None
    try:
        api_key = _api_key(request)
        fault = core.store.take_fault(path)
        if fault is not None:
            entry["fault"] = fault.mode
            if fault.mode == "hang":
                hang = fault.hang_seconds
            elif fault.mode == "not_found":
                entry["status"] = 404
                return Response("<html><body>Not Found</body></html>", 404, media_type="text/html")
            elif fault.mode == "delay":
                # A slow Stripe: the request is in flight for a while before it executes.
                await asyncio.sleep(fault.hang_seconds)
            elif fault.mode != "500" or not key:
                # 429s (rate limit, lock_timeout) are refused before execution: nothing saved.
                raise _fault_error(fault)
        raw = (await request.body()).decode() if method == "POST" else request.url.query
        try:
            params = decode(raw)
        except FormError as exc:
            raise invalid(str(exc)) from None
        if key:
            saved = idempotency.begin(core.store, api_key, key, method, path, params, request_id)
            if saved is not None:
                entry.update(status=saved.status, replayed=True)
                headers.update(
                    {"Idempotent-Replayed": "true", "Original-Request": saved.request_id}
                )
                assert saved.status is not None and saved.body is not None
                return _respond(saved.status, saved.body, headers)
            if fault is not None and fault.mode == "500":
                # Stripe saves the result of any request that began executing, a 500 included,
                # and replays it to every retry with the same key for 24 hours
                # (https://docs.stripe.com/api/idempotent_requests).
                error = _fault_error(fault)
                idempotency.finish(core.store, api_key, key, error.status, error.body())
                headers["Idempotency-Key"] = key
                raise error
        status, result = _run(core, Ctx(request_id, key), method, path, params)
        if isinstance(result, StripeError):
            headers.update(result.headers)
            body = result.body()
            keep = result.saved
        else:
            body, keep = result, True
        if key:
            if keep:
                idempotency.finish(core.store, api_key, key, status, body)
            else:
                idempotency.abandon(core.store, api_key, key)
            headers["Idempotency-Key"] = key
    except StripeError as exc:
        status, body = exc.status, exc.body()
        headers.update(exc.headers)
    entry["status"] = status
    if hang:
        # The work is done and saved; only the answer is late, like a response lost in transit.
        await asyncio.sleep(hang)
    return _respond(status, body, headers)


def create_app(config: StripeStandinConfig | None = None) -> FastAPI:
    core = Core(config or StripeStandinConfig())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        core.emitter.stop()

    app = FastAPI(
        title="Stripe API stand-in",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.core = core

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[..., Any]) -> Response:
        request.state.request_id = new_id("req", 14)
        response: Response = await call_next(request)
        response.headers["Request-Id"] = request.state.request_id
        return response

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def v1(request: Request, rest: str) -> Response:
        return await handle_v1(core, request)

    app.include_router(control_router(core))
    app.include_router(renewals.renewals_router(core))
    app.include_router(setup_intents.test_page_router(core))  # Stripe.js' part in dev
    return app
