"""Settle message claims that no attempt will come back to, from the provider's records.

Customer messages are sent by local activities (workflows/calls.py). A local activity's intent
is not in history until its result is: when the worker dies during a send and the replayed case
takes another path (the invoice was paid, or support stopped the case, meanwhile), nothing runs
that send again and its claim stays `claimed`. Likewise a send that timed out leaves its message
`uncertain` for the next attempt to ask the provider, and one the provider refused with a 5xx
leaves it `failed_retryable` for the next attempt to send, and a case paid or stopped during the
backoff makes no next attempt. Nobody could then tell whether the customer got the message.

Once the case's workflow has closed, no attempt can come back, so the sweep asks the provider:
- listed: `sent`, with the provider's id;
- not listed, once the claim is old enough for the listing to be trusted: `withdrawn` (the case
  ended before the message went out, and no longer wants it sent);
- the provider cannot be asked (no Email Activity API on the account): `uncertain`, with the
  reason, as an attempt would leave it (listed by NotificationStore.unresolved for a look).

Claims of running cases are left alone: their case may still come back to them, and an attempt
that finds its own old claim asks the provider itself (activities/email.py). Run by the worker
after each reconciliation (models/reconcile.py), with the lookups of the channels it sends on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from models.ledger import Notification
from models.notification_store import UNSETTLED_AFTER, NotificationStore
from models.store import Ledger

log = logging.getLogger("dunning.claim_sweep")

WITHDRAWN = "the case ended before this message went out; the provider never had it"


@dataclass(frozen=True)
class ProviderRecord:
    """What a provider's records say about one claimed message."""

    found: Literal["sent", "absent", "unknown"]
    provider_message_id: str | None = None
    detail: str | None = None


# A channel's lookup; None means "too early to tell" (the provider may not list it yet).
Lookup = Callable[[Notification], ProviderRecord | None]


@dataclass(frozen=True)
class Swept:
    dedupe_key: str
    status: str


async def sweep_claims(
    client: Client,
    ledger: Ledger,
    lookups: Mapping[str, Lookup],
    older_than: timedelta = UNSETTLED_AFTER,
    invoices: Sequence[str] = (),
    limit: int = 200,
) -> list[Swept]:
    """Settle the stale claims of closed cases (of `invoices`, if given) on the channels in
    `lookups`."""
    store = NotificationStore(ledger.sessions)
    rows = await asyncio.to_thread(store.stale_claims, older_than, list(lookups), invoices, limit)
    running: dict[str, bool] = {}
    swept = []
    for row, workflow_id in rows:
        if workflow_id not in running:
            running[workflow_id] = await _running(client, workflow_id)
        if running[workflow_id]:
            continue
        try:
            record = await asyncio.to_thread(lookups[row.channel], row)
        except Exception:  # the provider away for a moment: the next sweep asks again
            log.warning("could not look up %s; next sweep", row.dedupe_key, exc_info=True)
            continue
        if record is None:
            continue
        status, values = _settlement(record)
        settled = await asyncio.to_thread(store.settle_claim, row, status, **values)
        if settled:
            log.info("swept %s: %s", row.dedupe_key, status)
            swept.append(Swept(row.dedupe_key, status))
    return swept


def _settlement(record: ProviderRecord) -> tuple[str, dict[str, str | None]]:
    if record.found == "sent":
        return "sent", {"provider_message_id": record.provider_message_id, "error": None}
    if record.found == "absent":
        return "withdrawn", {"error": WITHDRAWN}
    return "uncertain", {"error": record.detail}


async def _running(client: Client, workflow_id: str) -> bool:
    try:
        # No run id: the latest run, so a reset (which starts a new run) counts as running.
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING
