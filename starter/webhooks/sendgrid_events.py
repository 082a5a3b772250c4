"""SendGrid's Signed Event Webhook: checking a delivery's signature, and what each event does to
the ledger (the endpoint is starter/webhooks/sendgrid.py).

Signature (SendGrid's "Getting Started with the Event Webhook Security Features"): ECDSA over
P-256 with SHA-256, of the `X-Twilio-Email-Event-Webhook-Timestamp` header's value followed by
the raw body; the `X-Twilio-Email-Event-Webhook-Signature` header is the DER signature in
base64; the verification key shown in SendGrid's settings is the base64 DER public key.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from pydantic import BaseModel, ConfigDict

from models.channel_store import ChannelStore, EmailReport

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid documents no window; the timestamp is signed, so refusing old ones stops a captured
# delivery from being replayed later. A batch SendGrid redelivers is signed anew.
TOLERANCE_SECONDS = 600

DELIVERY = {"delivered": "delivered", "bounce": "failed", "dropped": "failed"}
ENGAGEMENT = frozenset({"open", "click"})
OPT_OUT = frozenset({"spamreport", "unsubscribe", "group_unsubscribe"})
OPT_IN = frozenset({"group_resubscribe"})


class SignatureError(Exception):
    """The delivery is not SendGrid's (or too old): refused with 400, nothing done."""


def load_key(configured: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or the same in PEM."""
    try:
        if "BEGIN PUBLIC KEY" in configured:
            key = load_pem_public_key(configured.encode())
        else:
            key = load_der_public_key(base64.b64decode(configured.strip(), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as err:
        raise SignatureError(f"SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key ({err})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key")
    return key


def verify(
    configured_key: str, body: bytes, signature: str, timestamp: str, now: float | None = None
) -> None:
    """Raise SignatureError unless SendGrid signed this body at this (recent) timestamp."""
    if not configured_key:
        raise SignatureError("no SENDGRID_WEBHOOK_PUBLIC_KEY: every delivery is refused")
    if not signature or not timestamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    key = load_key(configured_key)
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise SignatureError(f"invalid {SIGNATURE_HEADER}") from None
    # Checked after the signature: only a signed timestamp says anything about the delivery.
    if not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a Unix time")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > TOLERANCE_SECONDS:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {age:.0f}s away from now")


class Event(BaseModel):
    """One event of the posted array (Event Webhook reference); the message's custom args
    arrive as further top-level fields, kept by `extra`."""

    model_config = ConfigDict(extra="allow")

    event: str
    email: str = ""
    timestamp: int = 0
    sg_event_id: str = ""
    sg_message_id: str = ""
    reason: str | None = None
    # A bounce's kind: "bounce" (the server refused the address) or "blocked".
    type: str | None = None

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)


@dataclass(frozen=True)
class OptOut:
    """An address that asked out of email (or back in) with the event that said so."""

    email: str
    opted_out: bool
    event: Event


@dataclass
class Applied:
    received: int = 0
    updated: int = 0
    unknown: int = 0
    ignored: int = 0
    opt_outs: int = 0


def apply_events(store: ChannelStore, events: list[Event]) -> tuple[Applied, list[OptOut]]:
    """Apply the batch to the ledger. Every change is idempotent, so a batch SendGrid
    redelivers (after a 5xx, or a duplicate it warns about) changes nothing more. Returns the
    counts and the opt-outs whose state the ledger now holds (to tell the cases)."""
    applied, told, reports = Applied(received=len(events)), list[OptOut](), []
    for evt in events:
        kind = evt.event
        if kind in DELIVERY and evt.sg_message_id:
            detail = f" ({evt.type})" if kind == "bounce" and evt.type else ""
            error = f"sendgrid {kind}{detail}: {evt.reason}" if evt.reason else f"sendgrid {kind}"
            reports.append(EmailReport(evt.sg_message_id, DELIVERY[kind], error[:500]))
        elif kind in ENGAGEMENT and evt.sg_message_id:
            reports.append(EmailReport(evt.sg_message_id, engaged_at=evt.at))
        elif (kind in OPT_OUT or kind in OPT_IN) and evt.email:
            opted_out = kind in OPT_OUT
            store.set_opt_out("email", evt.email, opted_out, f"sendgrid {kind}", at=evt.at)
            applied.opt_outs += 1
            # A newer choice of the address (a later event) wins: only tell what still holds.
            if store.is_opted_out("email", evt.email) == opted_out:
                told.append(OptOut(evt.email, opted_out, evt))
        else:
            # processed and deferred say nothing a sent email's status does not already say.
            applied.ignored += 1
    found = store.email_reports(reports) if reports else []
    applied.updated = sum(found)
    applied.unknown = len(found) - applied.updated
    return applied, told
