"""FastAPI app emulating SendGrid's `POST /v3/mail/send` plus `/_standin/` control endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .state import Attempt, Fault, Store, messages_from_body, new_message_id, now_iso, recipients_of
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
    413: "The JSON payload you have included in your request is too large.",
    429: "too many requests",
    500: "internal error",
    503: "service unavailable",
}

# 202 is not a failure: combined with delay_seconds it accepts the message but answers late,
# so a client timeout leaves the sender unsure whether the email went out.
FaultStatus = Literal[202, 400, 401, 403, 413, 429, 500, 503]


class FaultIn(BaseModel):
    status: FaultStatus
    count: int = Field(default=1, ge=1)
    to_contains: str | None = None
    delay_seconds: float = Field(default=0.0, ge=0, le=120)


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


def create_app(api_key: str | None = None) -> FastAPI:
    """Build the stand-in. With `api_key` set, only that bearer token is accepted."""
    app = FastAPI(title="SendGrid v3 mail/send stand-in")
    store = Store()
    app.state.store = store

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
        store.record_messages(messages_from_body(body, message_id))
        store.record_attempt(Attempt(now_iso(), 202, recipients, message_id=message_id))
        # The message is recorded before the delay: a client that times out here has in fact
        # had its email accepted, which is the ambiguous case callers must handle.
        await asyncio.sleep(delay)
        # Mail Send reference: success is 202 Accepted with an empty body; the message id is
        # only reported in the X-Message-Id header.
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    @app.post("/_standin/faults")
    def add_fault(spec: FaultIn) -> dict[str, Any]:
        fault = store.add_fault(spec.status, spec.count, spec.to_contains, spec.delay_seconds)
        return asdict(fault)

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
        return {"ok": True}

    return app
