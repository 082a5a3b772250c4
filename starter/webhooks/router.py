"""`POST /webhooks/stripe`: verify, record, act on Temporal, then answer.

Stripe's contract (https://docs.stripe.com/webhooks): any non-2xx answer, or none within its
timeout, is a failed delivery that Stripe retries with backoff for up to three days. So we
answer 2xx only once Temporal has accepted the start or signal, and 503 while it cannot;
each event id is claimed in `stripe_events` before acting so a redelivered or concurrent copy
has no second effect.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from models.stripe_events import Claim, StripeEventStore
from starter.deps import (
    TemporalUnavailable,
    get_ledger,
    get_settings_from,
    get_temporal_client,
    request_timeout,
)
from starter.webhooks.executor import Executor
from starter.webhooks.payloads import Event, PayloadError, parse_event
from starter.webhooks.routing import Ignore, plan
from starter.webhooks.signature import TOLERANCE_SECONDS, SignatureError, verify

log = logging.getLogger("dunning.webhooks")

MAX_BODY_BYTES = 1024 * 1024
# How long a copy of an event that another request is processing waits for its result.
DUPLICATE_WAIT_SECONDS = 5.0

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

Answers: 200 once Temporal accepted the start/signal, or the event needs nothing (no running
case, ignored type, duplicate: `{{"duplicate": true}}`); 400 bad signature or payload
(`{{"error": ...}}`); 409 another copy still processing; 413 body too large; 500 unexpected
error; 503 Temporal or the database unreachable. Stripe redelivers every non-2xx later.
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


async def _claim(store: StripeEventStore, event: Event) -> Claim:
    claim_it = functools.partial(
        store.claim,
        event_id=event.id,
        type=event.type,
        api_version=event.api_version,
        livemode=event.livemode,
        object_id=event.object_id,
        event_created=event.created,
    )
    claim = await run_in_threadpool(claim_it)
    # A concurrent copy is being processed: wait for its result rather than answer non-2xx
    # (which Stripe would count as a failed delivery and retry for days).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DUPLICATE_WAIT_SECONDS
    while not claim.owned and claim.status == "processing" and loop.time() < deadline:
        await asyncio.sleep(0.1)
        current = await run_in_threadpool(store.peek, event.id)
        if current is not None and current.status == "failed":
            # The other copy failed (e.g. 503): this one may try.
            claim = await run_in_threadpool(claim_it, count_delivery=False)
        elif current is not None:
            claim = current
    return claim


def _settle(store: StripeEventStore, event_id: str, error: str) -> None:
    try:
        store.fail(event_id, error)
    except SQLAlchemyError:
        # The claim's lease expires and a redelivery takes it over.
        log.exception("Could not mark Stripe event %s failed", event_id)


@router.post(
    "/webhooks/stripe",
    summary="Receive a Stripe webhook event",
    description=DESCRIPTION,
    responses={
        200: {"description": "Processed, ignored, or a duplicate of a processed event"},
        400: {"description": "Bad signature, malformed or incomplete payload"},
        409: {"description": "Another delivery of this event is still being processed"},
        413: {"description": "Body larger than 1 MiB"},
        500: {"description": "Unexpected error; the event is marked failed for redelivery"},
        503: {"description": "Temporal or the database unreachable; Stripe will redeliver"},
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

    store = StripeEventStore(get_ledger(request).sessions)
    try:
        claim = await _claim(store, event)
    except SQLAlchemyError:
        log.exception("Could not record Stripe event %s", event.id)
        return _error(503, "database unavailable, retry")
    if not claim.owned:
        if claim.status == "processing":
            return _error(409, "event is being processed")
        return JSONResponse(
            {"duplicate": True, "event": event.id, "status": claim.status, "action": claim.action}
        )
    return await _process(request, store, event)


async def _process(request: Request, store: StripeEventStore, event: Event) -> JSONResponse:
    try:
        decided = plan(event)
        if isinstance(decided, Ignore):
            status, action = "ignored", decided.reason
        else:
            client = await get_temporal_client(request)
            executor = Executor(
                client,
                get_settings_from(request).dunning_task_queue,
                get_ledger(request),
                timeout=request_timeout(request),
            )
            done = await executor.run(decided)
            status, action = done.status, done.action
    except PayloadError as err:
        await run_in_threadpool(_settle, store, event.id, f"rejected: {err}")
        log.warning("Stripe event %s (%s) rejected: %s", event.id, event.type, err)
        return _error(400, str(err))
    except TemporalUnavailable as err:
        await run_in_threadpool(_settle, store, event.id, f"temporal unavailable: {err}")
        log.warning("Stripe event %s (%s): Temporal unavailable (%s)", event.id, event.type, err)
        return _error(503, "temporal unavailable, retry")
    except Exception as err:
        log.exception("Stripe event %s (%s) failed", event.id, event.type)
        await run_in_threadpool(_settle, store, event.id, f"error: {err.__class__.__name__}")
        return _error(500, "internal error, retry")
    except BaseException as err:
        # Cancellation at shutdown: release the claim now (synchronously, the task may not
        # await again) so Stripe's redelivery does not wait for the lease.
        _settle(store, event.id, f"interrupted: {err.__class__.__name__}")
        raise
    try:
        await run_in_threadpool(store.finish, event.id, status, action)  # type: ignore[arg-type]
    except SQLAlchemyError:
        # Temporal already has the effect, so answer 2xx: a non-2xx would make Stripe redeliver
        # and, once the claim's lease expired, repeat the signal. The row stays `processing`.
        log.exception("Could not record the result of Stripe event %s: %s", event.id, action)
    # The echo of a case's own Stripe call (our cancellation coming back as
    # customer.subscription.deleted) is expected: debug, so it never reads like a problem.
    level = logging.DEBUG if isinstance(decided, Ignore) and decided.own_event else logging.INFO
    log.log(level, "Stripe event %s (%s): %s", event.id, event.type, action)
    body: dict[str, Any] = {"received": True, "event": event.id, "type": event.type}
    if isinstance(decided, Ignore) and decided.unhandled_type:
        body = {"ignored": event.type, "event": event.id}
    else:
        body.update(status=status, action=action)
    return JSONResponse(body)
