"""The Messages resource of Twilio's 2010-04-01 REST API: create, fetch and list.

Twilio's Messages API takes no idempotency key: sending the same request twice sends two
messages, so the stand-in counts every accepted request as a message. Callers avoid duplicates
themselves (ours keeps a business key in its own database).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from . import errors
from .config import TwilioStandinConfig
from .delivery import Deliverer
from .errors import TwilioError
from .phones import e164, is_alphanumeric_sender
from .segments import count_segments
from .state import API_VERSION, Store, new_sid, rfc2822_now

BASE = f"/{API_VERSION}/Accounts/{{account_sid}}"
# The Message resource reference: a body holds at most 1,600 characters.
MAX_BODY = 1600


def _check_auth(request: Request, config: TwilioStandinConfig, account_sid: str) -> None:
    # HTTP basic auth: the Account SID as user name, the auth token as password.
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    user, password = "", ""
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pass
    if not (
        hmac.compare_digest(user, config.account_sid)
        and hmac.compare_digest(password, config.auth_token)
    ):
        raise errors.authenticate()
    if account_sid != config.account_sid:
        raise errors.not_found(request.url.path)


def _sender(params: dict[str, str], config: TwilioStandinConfig) -> tuple[str | None, str | None]:
    service = params.get("MessagingServiceSid") or None
    raw = params.get("From") or None
    if service is not None and service not in config.messaging_service_sids:
        raise errors.invalid_messaging_service(service)
    if raw is None:
        return None, service
    sender = e164(raw)
    if sender is None:
        if not is_alphanumeric_sender(raw):
            raise errors.invalid_from(raw)
        sender = raw
    if sender not in config.numbers:
        raise errors.not_twilio_number(raw)
    return sender, service


def new_message(
    params: dict[str, str], config: TwilioStandinConfig, store: Store
) -> dict[str, Any]:
    """Validate a create request in Twilio's order of checks and build the Message resource."""
    if not params.get("To"):
        raise errors.to_required()
    if not params.get("From") and not params.get("MessagingServiceSid"):
        raise errors.from_required()
    body = params.get("Body", "")
    if not body:
        raise errors.body_required()
    if len(body) > MAX_BODY:
        raise errors.body_too_long()
    to = e164(params["To"])
    if to is None:
        raise errors.invalid_to(params["To"])
    sender, service = _sender(params, config)
    with store.lock:
        if to in store.opted_out:
            # The recipient texted an opt-out keyword to this account's senders.
            raise errors.unsubscribed()
    sid = new_sid("SM")
    now = rfc2822_now()
    uri = f"/{API_VERSION}/Accounts/{config.account_sid}/Messages/{sid}"
    return {
        "account_sid": config.account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": service,
        "num_media": "0",
        # A Messaging Service message has no sender yet, so no segment count: "0" and status
        # "accepted" until a sender is chosen (see delivery.py).
        "num_segments": str(count_segments(body)) if sender else "0",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued" if sender else "accepted",
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": to,
        "uri": f"{uri}.json",
    }


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def page_of(
    config: TwilioStandinConfig, store: Store, query: dict[str, str], path: str
) -> dict[str, Any]:
    """One page of the list, with the paging fields of Twilio's 2010 API list responses."""
    filters = {k: query[k] for k in ("To", "From") if query.get(k)}
    size = min(max(_int(query.get("PageSize"), 50), 1), 1000)
    page = max(_int(query.get("Page"), 0), 0)
    found = [
        m
        for m in store.newest_first()
        if all(m[key.lower()] == value for key, value in filters.items())
    ]
    start = page * size
    items = found[start : start + size]

    def uri(n: int) -> str:
        return f"{path}?{urlencode({**filters, 'PageSize': size, 'Page': n})}"

    return {
        "messages": items,
        "start": start,
        "end": start + max(len(items) - 1, 0),
        "page": page,
        "page_size": size,
        "uri": uri(page),
        "first_page_uri": uri(0),
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "next_page_uri": uri(page + 1) if start + size < len(found) else None,
    }


def messages_router(config: TwilioStandinConfig, store: Store, deliverer: Deliverer) -> APIRouter:
    router = APIRouter()

    @router.post(BASE + "/Messages.json")
    async def create(request: Request, account_sid: str) -> Response:
        raw = (await request.body()).decode("utf-8", errors="replace")
        params = dict(parse_qsl(raw, keep_blank_values=True))
        entry: dict[str, Any] = {"at": rfc2822_now(), "to": params.get("To"), "fault": None}
        hang = 0.0
        try:
            _check_auth(request, config, account_sid)
            fault = store.take_fault(params.get("To", ""))
            if fault is not None:
                entry["fault"] = fault.mode
                if fault.mode == "delay":
                    await asyncio.sleep(fault.seconds)
                    if await request.is_disconnected():
                        # The client gave up before Twilio took the request: no message.
                        entry.update(status=499, code=None, sid=None)
                        store.log_attempt(entry)
                        return Response(status_code=499)
                elif fault.mode == "hang":
                    hang = fault.seconds
                elif fault.mode == "429":
                    raise errors.too_many_requests()
                else:
                    raise errors.internal_error()
            resource = new_message(params, config, store)
        except TwilioError as exc:
            entry.update(status=exc.status, code=exc.code, sid=None)
            store.log_attempt(entry)
            return exc.response()
        store.put(resource, params.get("StatusCallback") or None)
        entry.update(status=201, code=None, sid=resource["sid"])
        store.log_attempt(entry)
        deliverer.outbound(resource["sid"])
        if hang:
            # The message exists and moves on; only the answer is late (a client timeout
            # that nevertheless sent the message).
            await asyncio.sleep(hang)
        return JSONResponse(resource, status_code=201)

    @router.get(BASE + "/Messages.json")
    def list_messages(request: Request, account_sid: str) -> Response:
        try:
            _check_auth(request, config, account_sid)
            body = page_of(config, store, dict(request.query_params), request.url.path)
        except TwilioError as exc:
            return exc.response()
        return JSONResponse(body)

    @router.get(BASE + "/Messages/{sid}.json")
    def fetch(request: Request, account_sid: str, sid: str) -> Response:
        try:
            _check_auth(request, config, account_sid)
            resource = store.get(sid)
            if resource is None:
                raise errors.not_found(request.url.path)
        except TwilioError as exc:
            return exc.response()
        return JSONResponse(resource)

    return router
