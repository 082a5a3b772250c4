"""Stripe-Signature verification over the raw request body.

Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 keyed by the endpoint's `whsec_...` secret and
sends `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` (https://docs.stripe.com/webhooks
"Verify webhook signatures"). The body must be verified byte for byte as received: re-encoding
parsed JSON changes it. When a secret is rolled, Stripe keeps signing with the old one for up
to 24 hours too, so STRIPE_WEBHOOK_SECRET may list several secrets; any match is accepted.

Error messages never contain a secret, a signature or the body.
"""

from __future__ import annotations

import stripe

# Stripe's libraries default to 5 minutes: older signed requests are refused so a captured
# delivery cannot be replayed later.
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The request is not a genuine, recent Stripe delivery. The message is safe to return."""


def verify(
    body: bytes, header: str | None, secrets: list[str], tolerance: int = TOLERANCE_SECONDS
) -> None:
    if not secrets:
        raise SignatureError("webhook secret not configured")
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SignatureError("body is not UTF-8") from err
    stale = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
            return
        except stripe.SignatureVerificationError as err:
            # verify_header compares the signature first and the timestamp last, so this
            # message means the signature matched this secret but is too old.
            if "tolerance" in str(err).lower():
                stale = True
    if stale:
        raise SignatureError(f"signature timestamp older than {tolerance} seconds")
    raise SignatureError("invalid signature")
