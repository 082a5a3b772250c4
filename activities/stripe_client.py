"""What only the activities need of Stripe: the charges' business idempotency keys. The client
and the readers of Stripe objects are in models/stripe_reads.py (the CLI uses them too)."""

from __future__ import annotations


def charge_idempotency_key(invoice_id: str, attempt: int, generation: int = 1) -> str:
    """`dunning-{invoice}:charge:{n}`; after a saved 5xx, `...:charge:{n}:r{generation}`."""
    key = f"dunning-{invoice_id}:charge:{attempt}"
    return key if generation == 1 else f"{key}:r{generation}"
