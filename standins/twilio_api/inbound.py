"""A customer texting the account's number: the inbound Message and its signed webhook.

Opt-out handling follows Twilio's defaults for a Messaging Service with Advanced Opt-Out: a
body that is exactly one keyword (any case, surrounding spaces ignored) opts the sender out or
back in at once, and the webhook still arrives, with `OptOutType` naming the keyword's kind.
"""

from __future__ import annotations

from typing import Any

from .config import TwilioStandinConfig
from .segments import count_segments
from .state import API_VERSION, Store, new_sid, rfc2822_now

# Twilio's default English keywords (Advanced Opt-Out tutorial; "Twilio support for opt-out
# keywords"): replying with one of these blocks further messages from the account's senders.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})


def opt_out_type(body: str) -> str | None:
    keyword = body.strip().upper()
    if keyword in OPT_OUT:
        return "STOP"
    if keyword in OPT_IN:
        return "START"
    if keyword in HELP:
        return "HELP"
    return None


def receive(
    store: Store, config: TwilioStandinConfig, sender: str, to: str, body: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Record the inbound message, apply its keyword, return (resource, webhook params)."""
    kind = opt_out_type(body)
    service = config.messaging_service_sids[0] if config.messaging_service_sids else None
    sid = new_sid("SM")
    now = rfc2822_now()
    segments = str(count_segments(body))
    resource: dict[str, Any] = {
        "account_sid": config.account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": now,
        "date_sent": now,
        "date_updated": now,
        "direction": "inbound",
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": segments,
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "received",
        "subresource_uris": {},
        "to": to,
        "uri": f"/{API_VERSION}/Accounts/{config.account_sid}/Messages/{sid}.json",
    }
    with store.lock:
        if kind == "STOP":
            store.opted_out.add(sender)
        elif kind == "START":
            store.opted_out.discard(sender)
        store.put(resource)
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": config.account_sid,
        "From": sender,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": segments,
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    if service:
        params["MessagingServiceSid"] = service
    if kind:
        params["OptOutType"] = kind
    return resource, params
