"""Idempotent requests as Stripe documents them (https://docs.stripe.com/api/idempotent_requests).

- The status code and body of the first request with a key are saved once endpoint execution
  begins, whether it succeeded or failed (500s included); retries with the key get that result.
- Requests that fail parameter validation, or that conflict with a concurrent request using the
  same key, save nothing and may be retried.
- Reusing a key with different parameters (or another endpoint) is an `idempotency_error`.
- Keys only matter on POST; GET and DELETE are idempotent by definition.
"""

from __future__ import annotations

from typing import Any

from .errors import StripeError
from .state import IdempotencyRecord, Store


def mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )


def in_use(key: str) -> StripeError:
    return StripeError(
        409,
        "idempotency_error",
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going through): "
        f"'{key}'. Please try again later.",
        code="idempotency_key_in_use",
    )


def begin(
    store: Store,
    scope: str,
    key: str,
    method: str,
    path: str,
    params: dict[str, Any],
    request_id: str,
) -> IdempotencyRecord | None:
    """Claim the key; return the saved record for a replay, None if this request runs."""
    with store.lock:
        record = store.idempotency.get((scope, key))
        if record is None:
            store.idempotency[(scope, key)] = IdempotencyRecord(method, path, params, request_id)
            return None
        if (record.method, record.path, record.params) != (method, path, params):
            raise mismatch(key)
        if record.in_progress:
            raise in_use(key)
        return record


def finish(store: Store, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
    with store.lock:
        record = store.idempotency.get((scope, key))
        if record is not None:
            record.status = status
            record.body = body


def abandon(store: Store, scope: str, key: str) -> None:
    with store.lock:
        store.idempotency.pop((scope, key), None)
