"""The timeouts and retries of each external system a workflow calls, in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# Stripe calls retry with backoff for hours (same idempotency key each time); a card decline
# is a result, so only outages and rate limits are retried here.
STRIPE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)
)
STRIPE_DEADLINE = timedelta(hours=6)
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)
)
EMAIL_DEADLINE = timedelta(hours=24)
# The ledger is ours: an outage is retried for a day, and bookkeeping never blocks the case.
LEDGER_RETRY = STRIPE_RETRY  # the same backoff
LEDGER_DEADLINE = timedelta(hours=24)
CALL_TIMEOUT = timedelta(seconds=60)
STRIPE_CALL: dict[str, Any] = {
    "start_to_close_timeout": CALL_TIMEOUT,
    "schedule_to_close_timeout": STRIPE_DEADLINE,
    "retry_policy": STRIPE_RETRY,
}
EMAIL_CALL: dict[str, Any] = {
    "start_to_close_timeout": CALL_TIMEOUT,
    "schedule_to_close_timeout": EMAIL_DEADLINE,
    "retry_policy": EMAIL_RETRY,
}
LEDGER_CALL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": LEDGER_DEADLINE,
    "retry_policy": LEDGER_RETRY,
}
