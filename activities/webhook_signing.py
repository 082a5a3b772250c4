"""Standard Webhooks signing (standardwebhooks.com, v1) through the `standardwebhooks` package.

The secret is `whsec_` + base64 of the key; the signature is `v1,` + base64 of
HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"), the timestamp in Unix seconds.
"""

from __future__ import annotations

import binascii
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"


def signer(secret: str) -> Webhook:
    """The package's signer for a `whsec_…` secret. ValueError when it is not base64."""
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret must be whsec_ followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    return signer(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)


def headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }
