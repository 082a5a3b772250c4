"""Signed links to the payment page: `{DUNNING_PUBLIC_URL}/pay/{token}`.

A token names one invoice and nothing else (no customer, email or amount: whoever holds the
link learns only what the page shows). It is `base64url(payload).base64url(HMAC-SHA256)`, the
payload a compact JSON `{"i": invoice id, "e": expiry (unix seconds), "k": key id}`.

DUNNING_LINK_SECRET holds `kid:secret` pairs separated by commas: the first signs, every one
verifies, so a new key goes first and the old one stays until the links it signed expire.

Expiry: the messages' activities pass the case's final deadline plus FEEDBACK_DAYS, so a link
still opens after the outcome (the page then says the case is closed and asks the feedback
question) and stops working a month later.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from datetime import datetime, timedelta
from typing import Literal

from models.settings import Settings

__all__ = [
    "FEEDBACK_DAYS",
    "InvalidLink",
    "LinkConfigError",
    "link_expiry",
    "make_token",
    "pay_url",
    "signing_keys",
    "verify",
]

FEEDBACK_DAYS = 30
_DOMAIN = b"dunning-pay-link/v1:"
MAX_TOKEN = 600

Problem = Literal["malformed", "tampered", "unknown_key", "expired"]


class LinkConfigError(ValueError):
    """DUNNING_LINK_SECRET is not a list of `kid:secret` pairs."""


class InvalidLink(Exception):
    """The token is not one we signed (malformed, tampered, unknown key) or has expired."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"payment link {problem.replace('_', ' ')}")
        self.problem: Problem = problem


def signing_keys(settings: Settings) -> list[tuple[str, bytes]]:
    """(kid, secret) pairs in order, the signing key first; empty when the page is off."""
    keys = []
    for pair in settings.dunning_link_secret.split(","):
        if not pair.strip():
            continue
        kid, sep, secret = pair.strip().partition(":")
        if not sep or not kid or not secret:
            raise LinkConfigError(
                "DUNNING_LINK_SECRET must be `kid:secret` pairs separated by commas"
            )
        keys.append((kid, secret.encode()))
    return keys


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> bytes:
    return hmac.digest(secret, _DOMAIN + payload.encode(), "sha256")


def make_token(settings: Settings, invoice_id: str, expires_at: datetime) -> str:
    keys = signing_keys(settings)
    if not keys:
        raise LinkConfigError("DUNNING_LINK_SECRET is not set")
    kid, secret = keys[0]
    body = {"i": invoice_id, "e": int(expires_at.timestamp()), "k": kid}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(secret, payload))}"


def pay_url(settings: Settings, invoice_id: str, expires_at: datetime) -> str | None:
    """The payment page's link, or None when the page is not configured (no secret or no
    public URL): the messages then link to Stripe's hosted invoice page."""
    base = settings.dunning_public_url.strip().rstrip("/")
    if not base or not signing_keys(settings):
        return None
    return f"{base}/pay/{make_token(settings, invoice_id, expires_at)}"


def link_expiry(final_deadline: datetime) -> datetime:
    """When a case's links stop working: FEEDBACK_DAYS after its final deadline."""
    return final_deadline + timedelta(days=FEEDBACK_DAYS)


def verify(settings: Settings, token: str, now: float | None = None) -> str:
    """The invoice id a valid token names; InvalidLink says why it is not valid."""
    payload, sep, signature = token.partition(".")
    if not sep or not payload or len(token) > MAX_TOKEN:
        raise InvalidLink("malformed")
    try:
        body = json.loads(_unb64(payload))
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise InvalidLink("malformed") from None
    if not isinstance(body, dict):
        raise InvalidLink("malformed")
    kid = body.get("k")
    secret = dict(signing_keys(settings)).get(kid) if isinstance(kid, str) else None
    if secret is None:
        # Checked before the MAC: without the key we cannot tell tampering from an old key.
        raise InvalidLink("unknown_key")
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise InvalidLink("tampered")
    invoice, expiry = body.get("i"), body.get("e")
    if not isinstance(invoice, str) or not invoice or not isinstance(expiry, int):
        raise InvalidLink("malformed")
    if (time.time() if now is None else now) >= expiry:
        raise InvalidLink("expired")
    return invoice
