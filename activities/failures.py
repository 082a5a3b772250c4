"""Failures as Temporal records them: compact (type, message, the provider's code and request id),
never a traceback or a cause chain.

History keeps every failure of every attempt, and the UI shows only its message; a failure that
carries a 200 KB SQLAlchemy traceback is replaced by "Failure exceeds size limit" and on-call
sees nothing. So activities raise an `ApplicationError` built here, `from None`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import stripe
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from temporalio.exceptions import ApplicationError

log = logging.getLogger("dunning.activities")

F = TypeVar("F", bound=Callable[..., Any])

# Stripe's transient answers: retried by Temporal with backoff under the same idempotency key.
_TRANSIENT: tuple[tuple[type[stripe.StripeError], str], ...] = (
    (stripe.APIConnectionError, "StripeConnectionError"),
    (stripe.RateLimitError, "StripeRateLimited"),
    (stripe.APIError, "StripeAPIError"),
)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stripe_failure(exc: stripe.StripeError) -> ApplicationError:
    """Classify a Stripe error: transient ones stay retryable, the rest are non-retryable."""
    where = f"{exc.http_status or 'no answer'} {exc.code or ''}".strip()
    request = f" (request {exc.request_id})" if exc.request_id else ""
    message = f"Stripe {where}: {_first_line(exc.user_message or str(exc))}{request}"
    for kind, name in _TRANSIENT:
        if isinstance(exc, kind):
            return ApplicationError(message, type=name)
    if exc.http_status == 409:
        # A concurrent request with the same key is still running: Stripe says retry later.
        return ApplicationError(message, type="StripeConflict")
    if isinstance(exc, stripe.IdempotencyError):
        kind_name = "StripeIdempotencyError"
    elif isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        kind_name = "StripeAuthenticationError"
    else:
        kind_name = "StripeInvalidRequest"
    return ApplicationError(message, type=kind_name, non_retryable=True)


def database_failure(exc: SQLAlchemyError) -> ApplicationError:
    # Outages end; Temporal retries with backoff. The statement and parameters stay out.
    if _missing_case(exc):
        # Every ledger row belongs to a case row, which the case's opening writes: a support
        # action taken while a slow opening runs gets there first, and its retry succeeds.
        return ApplicationError(
            "ledger database: the case has no ledger row yet (its opening may still be"
            " running); retried",
            type="LedgerCaseNotOpened",
        )
    detail = _first_line(str(getattr(exc, "orig", None) or exc))
    return ApplicationError(
        f"ledger database: {type(exc).__name__}: {detail}", type="DatabaseError"
    )


def _missing_case(exc: SQLAlchemyError) -> bool:
    """A foreign-key violation: PostgreSQL's SQLSTATE 23503 (psycopg2 `pgcode`, psycopg 3
    `sqlstate`), SQLite's message."""
    if not isinstance(exc, IntegrityError):
        return False
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code == "23503" or "FOREIGN KEY constraint failed" in str(orig)


def compact_failures(fn: F) -> F:
    """Wrap an activity so that whatever it raises is recorded compactly."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApplicationError:
            raise
        except stripe.StripeError as exc:
            failure = stripe_failure(exc)
        except SQLAlchemyError as exc:
            failure = database_failure(exc)
        log.warning("%s failed: %s", fn.__name__, failure.message)
        raise failure from None

    return wrapper  # type: ignore[return-value]
