"""`POST /webhooks/twilio`: Twilio's signed status callbacks and the texts customers send.

- The signature (`X-Twilio-Signature`) is checked with the SDK's RequestValidator against
  TWILIO_AUTH_TOKEN and the URL Twilio posted to (DUNNING_PUBLIC_URL + path when set, since a
  proxy changes what this process sees). Missing or wrong → 400, nothing done.
- A status callback moves the notification's status on (delivered, undelivered, failed).
- STOP (and Twilio's other opt-out keywords) opts the number out at once in the ledger, which
  every SMS send checks, then tells the running cases of the customers texted at that number,
  so their details show it and support hears (`dunning.case.needs_support`); START opts back
  in. The ledger is the truth: when Temporal is unreachable the signal is skipped, logged, and
  the answer is still 200 (Twilio does not redeliver incoming messages).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from models.channel_store import ChannelStore
from models.dunning import ChannelOptOutInput
from models.settings import Settings
from models.store import Ledger
from starter.webhooks.opt_outs import TEMPORAL_DOWN, tell_running_cases

log = logging.getLogger("dunning.twilio")
router = APIRouter(tags=["webhooks"])

MAX_BODY = 64 * 1024
# Twilio's default keywords (the Advanced Opt-Out defaults); `OptOutType` wins when present.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
DELIVERY = frozenset({"sent", "delivered", "undelivered", "failed"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def keyword_kind(params: dict[str, str]) -> str | None:
    kind = params.get("OptOutType", "").upper()
    if kind in ("STOP", "START"):
        return kind
    word = params.get("Body", "").strip().upper()
    return "STOP" if word in OPT_OUT else "START" if word in OPT_IN else None


def signed_url(request: Request, settings: Settings) -> str:
    public = settings.dunning_public_url.rstrip("/")
    if not public:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public}{request.url.path}{query}"


@router.post(
    "/webhooks/twilio",
    summary="Twilio status callbacks and incoming texts (STOP/START)",
    responses={400: {"description": "missing or invalid X-Twilio-Signature"}},
)
async def twilio_webhook(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return JSONResponse({"error": "body too large"}, status_code=413)
    params = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    token = settings.twilio_auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    url = signed_url(request, settings)
    if not token or not signature or not RequestValidator(token).validate(url, params, signature):
        return JSONResponse({"error": "invalid X-Twilio-Signature"}, status_code=400)
    ledger: Ledger = request.app.state.ledger
    store = ChannelStore(ledger.sessions)
    if "Body" in params and params.get("From"):
        await _incoming(request, store, params)
        return Response(EMPTY_TWIML, media_type="text/xml")
    status = params.get("MessageStatus", "")
    if status in DELIVERY and params.get("MessageSid"):
        error = f"twilio {params['ErrorCode']}" if params.get("ErrorCode") else None
        await run_in_threadpool(store.delivery_report, params["MessageSid"], status, error)
    return JSONResponse({"status": status or "ignored"})


async def _incoming(request: Request, store: ChannelStore, params: dict[str, str]) -> None:
    kind = keyword_kind(params)
    if kind is None:
        return  # a reply support may read in Twilio's console; nothing to change here
    phone, opted_out = params["From"], kind == "STOP"
    word = params.get("Body", "").strip().upper()[:30] or kind
    await run_in_threadpool(store.set_opt_out, "sms", phone, opted_out, f"sms {word}")
    change = ChannelOptOutInput(channel="sms", opted_out=opted_out, source=f"SMS {word}")
    try:
        await tell_running_cases(
            request, store, change, phone, f"twilio:{params.get('MessageSid', '')}"
        )
    except TEMPORAL_DOWN as err:
        log.warning("SMS %s recorded; running cases not told (%s)", kind, type(err).__name__)
