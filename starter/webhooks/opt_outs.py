"""Telling the running cases that a customer opted out of a channel, or back in: shared by the
provider webhooks that hear it (Twilio's STOP/START texts, SendGrid's unsubscribes).

The ledger's opt-out is written first and is what every send checks; the signal is for the
case itself (its details, and `dunning.case.needs_support`). Each caller decides what an
unreachable Temporal means for its provider: `TEMPORAL_DOWN` names those errors.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from models.channel_store import ChannelStore
from models.dunning import ChannelOptOutInput
from models.settings import Settings
from starter.deps import TemporalConnector, TemporalUnavailable
from starter.webhooks.executor import Executor
from starter.webhooks.routing import SignalCase

TEMPORAL_DOWN = (TemporalUnavailable, RPCError, TimeoutError)


async def tell_running_cases(
    request: Request,
    store: ChannelStore,
    change: ChannelOptOutInput,
    address: str,
    request_id: str,
) -> list[str]:
    """Signal `channel_opt_out` to the open cases of the customers sent to at `address`;
    the invoices signalled. Raises one of TEMPORAL_DOWN when Temporal cannot be told."""
    customers = await run_in_threadpool(store.customers_at, change.channel, address)
    invoices = await run_in_threadpool(store.open_invoices_of, customers)
    if not invoices:
        return []
    settings: Settings = request.app.state.settings
    connector: TemporalConnector = request.app.state.temporal
    client = await connector.get()
    executor = Executor(
        client,
        settings.dunning_task_queue,
        request.app.state.ledger,
        request.app.state.temporal_timeout,
    )
    for invoice in invoices:
        # One fact, one signal: the provider's id of the message or event names it, per case.
        await executor.run(
            SignalCase(
                invoice_id=invoice,
                signal="channel_opt_out",
                arg=change,
                request_id=request_id,
            )
        )
    return invoices
