"""FastAPI app emulating SendGrid's `POST /v3/mail/send`, the Email Activity API
(`GET /v3/messages`) and the Signed Event Webhook (events.py), plus `/_standin/` control
endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .activity import QueryError, parse_limit
from .activity import list_messages as feed_messages
from .events import EventPoster, EventWebhookConfig, install_event_routes
from .state import (
    Attempt,
    Fault,
    FeedSettings,
    Store,
    messages_from_body,
    new_message_id,
    now_iso,
    recipients_of,
)
from .validation import error, validate_mail_send

# Mail Send reference: "The total size of your email, including attachments, must be less
# than 30MB."
MAX_BODY_BYTES = 30 * 1024 * 1024

# v3 errors page / authentication docs: the body returned for a missing or rejected key.
UNAUTHORIZED_BODY = {
    "errors": [
        {
            "field": None,
            "message": "The provided authorization grant is invalid, expired, or revoked",
            "help": None,
        }
    ]
}

# Bodies for injected faults, in the documented {"errors": [{field, message}]} shape.
_FAULT_MESSAGES: dict[int, str] = {
    403: "access forbidden",
    404: "resource not found",
    413: "The JSON payload you have included in your request is too large.",
    429: "too many requests",
    500: "internal error",
    503: "service unavailable",
}

# 202 is not a failure: combined with delay_seconds it slows an accepted send down (see mode).
FaultStatus = Literal[202, 400, 401, 403, 404, 413, 429, 500, 503]


class FaultIn(BaseModel):
    status: FaultStatus = 202
    count: int = Field(default=1, ge=1)
    # Mail send: a recipient address contains this. Email Activity API: the query does.
    to_contains: str | None = None
    delay_seconds: float = Field(default=0.0, ge=0, le=120)
    # For status 202 only. "hang" (a timeout): the message is accepted at once and the answer
    # comes after delay_seconds, so a client that times out had its email sent anyway.
    # "delay" (a slow SendGrid): the request waits delay_seconds before SendGrid takes it, and
    # is dropped if the client went away meanwhile (a worker killed while the send was in
    # flight), so that email never reached SendGrid.
    mode: Literal["hang", "delay"] = "hang"
    endpoint: Literal["mail_send", "messages"] = "mail_send"


class FeedIn(BaseModel):
    """Email Activity API behaviour; fields left out keep their current value."""

    available: bool | None = None
    unavailable_status: Literal[401, 403, 404] | None = None
    lag_seconds: float | None = Field(default=None, ge=0, le=3600)


def _errors(
    status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


def _fault_response(fault: Fault, body: object) -> JSONResponse:
    if fault.status == 401:
        return JSONResponse(UNAUTHORIZED_BODY, status_code=401)
    if fault.status == 400:
        return _errors(400, [_rejected_recipient_error(fault, body)])
    headers = None
    if fault.status == 429:
        # Rate-limits page: 429 responses carry X-RateLimit-Limit/Remaining/Reset, the
        # reset being a Unix timestamp at which the refresh period ends.
        headers = {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + 60),
        }
    return _errors(
        fault.status, [{"field": None, "message": _FAULT_MESSAGES[fault.status]}], headers
    )


def _rejected_recipient_error(fault: Fault, body: object) -> dict[str, Any]:
    """Point the simulated rejection at the first recipient matching the fault's filter."""
    field = "personalizations.0.to.0.email"
    if isinstance(body, dict) and isinstance(body.get("personalizations"), list):
        needle = (fault.to_contains or "").lower()
        for p_idx, pers in enumerate(body["personalizations"]):
            to = pers.get("to") if isinstance(pers, dict) else None
            for t_idx, entry in enumerate(to if isinstance(to, list) else []):
                email = entry.get("email") if isinstance(entry, dict) else None
                if isinstance(email, str) and needle in email.lower():
                    return error(
                        "Does not contain a valid address.",
                        f"personalizations.{p_idx}.to.{t_idx}.email",
                    )
    return error("Does not contain a valid address.", field)


def _authorized(request: Request, api_key: str | None) -> bool:
    # v3 authentication docs: "Authorization: Bearer <<YOUR_API_KEY>>" on every request.
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return api_key is None or token.strip() == api_key


def create_app(api_key: str | None = None, events: EventWebhookConfig | None = None) -> FastAPI:
    """Build the stand-in. With `api_key` set, only that bearer token is accepted; `events`
    says where its Event Webhook posts (`app.state.events.public_key` verifies them)."""
    app = FastAPI(title="SendGrid v3 mail/send stand-in")
    store = Store()
    poster = EventPoster(events or EventWebhookConfig())
    app.state.store = store
    app.state.events = poster

    @app.post("/v3/mail/send")
    async def mail_send(request: Request) -> Response:
        raw = await request.body()
        if not _authorized(request, api_key):
            store.record_attempt(Attempt(now_iso(), 401, [], errors=UNAUTHORIZED_BODY["errors"]))
            return JSONResponse(UNAUTHORIZED_BODY, status_code=401)
        try:
            body: object = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        recipients = recipients_of(body)

        fault = store.take_fault(recipients)
        delay = fault.delay_seconds if fault is not None else 0.0
        if fault is not None and fault.status == 202 and fault.mode == "delay":
            await asyncio.sleep(delay)
            delay = 0.0
            if await request.is_disconnected():
                # The client gave up (or was killed) before SendGrid took the request: no
                # message. 499 is the conventional "client closed request" log code.
                errs = [{"field": None, "message": "client closed the request before it was read"}]
                store.record_attempt(
                    Attempt(now_iso(), 499, recipients, fault_id=fault.id, errors=errs)
                )
                return Response(status_code=499)
        if fault is not None and fault.status != 202:
            await asyncio.sleep(delay)
            resp = _fault_response(fault, body)
            errs = json.loads(bytes(resp.body)).get("errors", [])
            store.record_attempt(
                Attempt(now_iso(), fault.status, recipients, fault_id=fault.id, errors=errs)
            )
            return resp

        if len(raw) > MAX_BODY_BYTES:
            errs = [{"field": None, "message": _FAULT_MESSAGES[413]}]
            store.record_attempt(Attempt(now_iso(), 413, recipients, errors=errs))
            return _errors(413, errs)

        errs = validate_mail_send(body)
        if errs:
            store.record_attempt(Attempt(now_iso(), 400, recipients, errors=errs))
            return _errors(400, errs)

        assert isinstance(body, dict)
        message_id = new_message_id()
        accepted = messages_from_body(body, message_id)
        store.record_messages(accepted)
        poster.accepted(accepted)
        store.record_attempt(Attempt(now_iso(), 202, recipients, message_id=message_id))
        # The message is recorded before the delay: a client that times out here has in fact
        # had its email accepted, which is the ambiguous case callers must handle.
        await asyncio.sleep(delay)
        # Mail Send reference: success is 202 Accepted with an empty body; the message id is
        # only reported in the X-Message-Id header.
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    @app.get("/v3/messages")
    async def filter_messages(
        request: Request, query: str | None = None, limit: str | None = None
    ) -> Response:
        if not _authorized(request, api_key):
            store.record_query(query, 401)
            return JSONResponse(UNAUTHORIZED_BODY, status_code=401)
        feed = store.feed
        if not feed.available:
            # An account without the Email Activity add-on (or a key without its scope).
            store.record_query(query, feed.unavailable_status)
            return _fault_response(Fault(0, feed.unavailable_status, 0), None)
        fault = store.take_fault([query or ""], endpoint="messages")
        if fault is not None:
            await asyncio.sleep(fault.delay_seconds)
            if fault.status != 202:
                store.record_query(query, fault.status)
                return _fault_response(fault, None)
        try:
            found = feed_messages(store.recorded(), query, parse_limit(limit), feed.lag_seconds)
        except QueryError as exc:
            store.record_query(query, 400)
            return _errors(400, [{"field": exc.field, "message": str(exc)}])
        store.record_query(query, 200, len(found))
        return JSONResponse({"messages": found})

    @app.post("/_standin/faults")
    def add_fault(spec: FaultIn) -> dict[str, Any]:
        fault = store.add_fault(
            spec.status,
            spec.count,
            spec.to_contains,
            spec.delay_seconds,
            mode=spec.mode,
            endpoint=spec.endpoint,
        )
        return asdict(fault)

    @app.post("/_standin/activity_feed")
    def set_feed(spec: FeedIn) -> dict[str, Any]:
        current = asdict(store.feed)
        store.feed = FeedSettings(**{**current, **spec.model_dump(exclude_none=True)})
        return asdict(store.feed)

    @app.get("/_standin/activity_feed")
    def get_feed() -> dict[str, Any]:
        return {**asdict(store.feed), "queries": store.queries()}

    @app.delete("/_standin/faults")
    def clear_faults() -> list[dict[str, Any]]:
        store.clear_faults()
        return []

    @app.get("/_standin/faults")
    def list_faults() -> list[dict[str, Any]]:
        return store.pending_faults()

    @app.get("/_standin/messages")
    def list_messages(
        custom_arg: list[str] | None = Query(default=None),
    ) -> list[dict[str, Any]]:
        wanted: dict[str, str] = {}
        for item in custom_arg or []:
            key, sep, value = item.partition(":")
            if not sep or not key:
                raise HTTPException(422, f"custom_arg must look like key:value, got {item!r}")
            wanted[key] = value
        return store.messages(wanted)

    @app.get("/_standin/attempts")
    def list_attempts() -> list[dict[str, Any]]:
        return store.attempts()

    @app.post("/_standin/reset")
    def reset() -> dict[str, bool]:
        store.reset()
        poster.reset()
        return {"ok": True}

    install_event_routes(app, store, poster)
    return app
