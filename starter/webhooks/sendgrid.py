"""`POST /webhooks/sendgrid`: SendGrid's Signed Event Webhook, a JSON array of email events.

- The signature is checked against SENDGRID_WEBHOOK_PUBLIC_KEY (starter.webhooks
  .sendgrid_events). No key, a missing, wrong or stale signature → 400, nothing done.
- Each event finds its email by `sg_message_id` (the X-Message-Id the send stored, then SendGrid's
  suffix): delivered → "delivered"; bounce or dropped → "failed" with the reason; open or
  click → engagement (`read_at`); processed and deferred change nothing. Statuses only move
  forward, so repeats and late events change nothing; unknown messages are ignored.
- spamreport, unsubscribe and group_unsubscribe opt the address out of email in the ledger,
  then the running cases of the customers emailed there are told (`channel_opt_out`);
  group_resubscribe opts back in.
- SendGrid redelivers a batch that did not get a 2xx (for up to 24 hours, per its Event
  Webhook troubleshooting page), and every change is idempotent: a database or Temporal
  failure answers 503 so the batch comes again, rather than 200 and events lost.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from models.channel_store import ChannelStore
from models.dunning import ChannelOptOutInput
from models.settings import Settings
from models.store import Ledger
from starter.webhooks.opt_outs import TEMPORAL_DOWN, tell_running_cases
from starter.webhooks.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Event,
    SignatureError,
    apply_events,
    verify,
)

log = logging.getLogger("dunning.sendgrid")
router = APIRouter(tags=["webhooks"])

# SendGrid posts a batch every 30 seconds or once it reaches 768 KB (Event Webhook docs); the
# batch that crosses that size is a little larger.
MAX_BODY = 2 * 1024 * 1024


def _refused(reason: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


@router.post(
    "/webhooks/sendgrid",
    summary="SendGrid Event Webhook (signed): delivery, engagement and unsubscribes of emails",
    responses={
        400: {"description": "no verification key, or a missing, invalid or stale signature"},
        503: {"description": "the ledger or Temporal failed; SendGrid sends the batch again"},
    },
)
async def sendgrid_webhook(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _refused("body too large", 413)
    try:
        verify(
            settings.sendgrid_webhook_public_key,
            raw,
            request.headers.get(SIGNATURE_HEADER, ""),
            request.headers.get(TIMESTAMP_HEADER, ""),
        )
    except SignatureError as err:
        log.warning("SendGrid event delivery refused: %s", err)
        return _refused(str(err))
    try:
        posted = json.loads(raw)
    except ValueError:
        return _refused("the body is not JSON")
    if not isinstance(posted, list):
        return _refused("the body is not a JSON array of events")
    events = []
    for item in posted:
        if not isinstance(item, dict):
            continue
        try:
            # A field SendGrid sends as null is taken as absent.
            events.append(Event.model_validate({k: v for k, v in item.items() if v is not None}))
        except ValidationError:
            continue  # not an email event we can read; the others still count
    ledger: Ledger = request.app.state.ledger
    store = ChannelStore(ledger.sessions)
    try:
        applied, opt_outs = await run_in_threadpool(apply_events, store, events)
    except SQLAlchemyError as err:
        log.warning("SendGrid events not recorded (%s); SendGrid will resend", type(err).__name__)
        return _refused("the ledger is unavailable; send again", 503)
    for change in opt_outs:
        arg = ChannelOptOutInput(
            channel="email", opted_out=change.opted_out, source=f"SendGrid {change.event.event}"
        )
        request_id = f"sendgrid:{change.event.sg_event_id or change.event.timestamp}"
        try:
            await tell_running_cases(request, store, arg, change.email, request_id)
        except TEMPORAL_DOWN as err:
            # The ledger has the opt-out already; the redelivered batch changes nothing there
            # and tells the cases then (Temporal drops a signal it already has by request id).
            log.warning("Email opt-out recorded; cases not told (%s)", type(err).__name__)
            return _refused("Temporal is unavailable; send again", 503)
        except SQLAlchemyError as err:
            log.warning("Email opt-out recorded; cases not found (%s)", type(err).__name__)
            return _refused("the ledger is unavailable; send again", 503)
    return JSONResponse(
        {
            "received": applied.received,
            "updated": applied.updated,
            "unknown_messages": applied.unknown,
            "ignored": applied.ignored,
            "opt_outs": applied.opt_outs,
        }
    )
