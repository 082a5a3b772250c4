"""`POST /webhooks/stripe`: verify, keep, answer; the relay acts on Temporal afterwards.

Stripe's contract (https://docs.stripe.com/webhooks): any non-2xx answer, or none within its
timeout, is a failed delivery that Stripe retries with backoff for up to three days, and it
asks for a quick 2xx with the processing done asynchronously. So a delivery is answered 200 as
soon as its verified body is committed to `stripe_events` (an INSERT keyed by event id, in a
group commit with the deliveries arriving alongside: intake.py; a redelivered or concurrent
copy is a duplicate with no second effect), and the relay
(`relay.py`) starts or signals the case. Temporal being down delays that, never the answer;
only the database being down answers 503.
"""

from __future__ import annotations

import logging
from typing import Annotated, cast

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from starter.deps import (
    get_settings_from,
)
from starter.webhooks.intake import Intake
from starter.webhooks.payloads import PayloadError, parse_event
from starter.webhooks.relay import Relay
from starter.webhooks.routing import Ignore, plan
from starter.webhooks.signature import TOLERANCE_SECONDS, SignatureError, verify

log = logging.getLogger("dunning.webhooks")

MAX_BODY_BYTES = 1024 * 1024

router = APIRouter(tags=["Stripe webhooks"])

DESCRIPTION = f"""
Endpoint for Stripe's webhook deliveries (Dashboard → Developers → Webhooks).

The `Stripe-Signature` header is verified over the raw body with each secret in
`STRIPE_WEBHOOK_SECRET` (comma-separated during a secret roll), tolerance {TOLERANCE_SECONDS} s.
Bodies over 1 MiB are refused (413).

| Event | Effect on the case `dunning-{{invoice}}` |
|---|---|
| `invoice.payment_failed` | start the case (or signal `payment_failed` if it runs) |
| `invoice.paid`, `invoice.payment_succeeded` | signal `payment_succeeded` (once per invoice) |
| `invoice.voided`, `invoice.marked_uncollectible` | signal `stop` |
| `invoice.payment_action_required` | signal `payment_action_required` |
| `customer.subscription.deleted` | signal `stop` to the subscription's running cases |
| `payment_method.attached`, `setup_intent.succeeded`, `customer.updated` (default payment \
method changed) | signal `payment_method_updated` to the customer's running cases (once per \
card) |
| other | ignored, 200 |

One fact is one signal: each signal carries a request id (`paid:{{invoice}}`,
`card:{{payment method}}`, else `event:{{event id}}`) and Temporal drops a repeat of it to the
same run. Events caused by a case's own Stripe calls (idempotency key `dunning-{{invoice}}:…`:
its retries and final action) are ignored: the case has the result from its activity.

Answers: 200 `{{"status": "queued"}}` once the event is durably kept (the relay applies it
to Temporal right after, and retries while Temporal is unreachable; its result is in
`stripe_events.status`/`action`), or the event needs nothing (ignored type, duplicate:
`{{"duplicate": true, "status": ...}}`); 400 bad signature or payload (`{{"error": ...}}`);
413 body too large; 503 the database unreachable. Stripe redelivers every non-2xx later.
"""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None past MAX_BODY_BYTES (counted as read: Content-Length can lie)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def relay_of(request: Request) -> Relay:
    return cast(Relay, request.app.state.relay)


def intake_of(request: Request) -> Intake:
    return cast(Intake, request.app.state.intake)


@router.post(
    "/webhooks/stripe",
    summary="Receive a Stripe webhook event",
    description=DESCRIPTION,
    responses={
        200: {"description": "Kept for the relay, ignored, or a duplicate of a kept event"},
        400: {"description": "Bad signature, malformed or incomplete payload"},
        413: {"description": "Body larger than 1 MiB"},
        503: {"description": "The database unreachable; Stripe will redeliver"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A Stripe Event object, verified byte for byte as sent.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def stripe_webhook(
    request: Request,
    stripe_signature: Annotated[
        str | None,
        Header(alias="Stripe-Signature", description="t=<unix time>,v1=<hex HMAC-SHA256>"),
    ] = None,
) -> JSONResponse:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            return _error(400, "invalid Content-Length")
        if int(declared) > MAX_BODY_BYTES:
            return _error(413, "body larger than 1 MiB")
    body = await _read_body(request)
    if body is None:
        return _error(413, "body larger than 1 MiB")

    settings = get_settings_from(request)
    try:
        verify(body, stripe_signature, settings.webhook_secrets())
    except SignatureError as err:
        log.warning("Refused a webhook delivery: %s", err)
        return _error(400, str(err))
    try:
        event = parse_event(body)
    except PayloadError as err:
        log.warning("Refused a signed webhook body: %s", err)
        return _error(400, str(err))

    try:
        decided = plan(event)
    except PayloadError as err:
        log.warning("Refused Stripe event %s (%s): %s", event.id, event.type, err)
        return _error(400, str(err))
    ignored = decided if isinstance(decided, Ignore) else None
    relay = relay_of(request)
    # With room, this process applies the event itself right after answering (kept as
    # `processing`); otherwise it waits in the table for a sweep (`queued`).
    mine = ignored is None and relay.has_room()
    try:
        seen = await intake_of(request).keep(
            event_id=event.id,
            payload=body.decode("utf-8"),
            status="ignored" if ignored else ("processing" if mine else "queued"),
            action=ignored.reason if ignored else None,
            type=event.type,
            api_version=event.api_version,
            livemode=event.livemode,
            object_id=event.object_id,
            event_created=event.created,
        )
    except SQLAlchemyError:
        log.exception("Could not record Stripe event %s", event.id)
        return _error(503, "database unavailable, retry")
    if seen is not None:
        return JSONResponse(
            {"duplicate": True, "event": event.id, "status": seen.status, "action": seen.action}
        )
    if ignored is not None:
        level = logging.DEBUG if ignored.own_event else logging.INFO
        log.log(level, "Stripe event %s (%s): %s", event.id, event.type, ignored.reason)
        if ignored.unhandled_type:
            return JSONResponse({"ignored": event.type, "event": event.id})
        body_out = {"received": True, "event": event.id, "type": event.type}
        return JSONResponse({**body_out, "status": "ignored", "action": ignored.reason})
    # Committed: the event can no longer be lost. The relay applies it to Temporal now, and
    # again later if Temporal is away (so its outage never turns into a non-2xx here).
    relay.accepted()
    if mine:
        relay.submit(event.id, decided)
    else:
        relay.start()
    return JSONResponse(
        {"received": True, "event": event.id, "type": event.type, "status": "queued"}
    )
