"""The dunning worker: `python worker.py` (or `dunning worker`).

Env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DUNNING_TASK_QUEUE, DUNNING_POLICY, DATABASE_URL,
STRIPE_API_KEY / STRIPE_API_BASE, SENDGRID_API_KEY / SENDGRID_API_HOST, DUNNING_EMAIL_FROM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.email import EmailActivities, make_sendgrid_client
from activities.ledger import LedgerActivities
from activities.stripe_billing import StripeActivities
from activities.stripe_client import make_stripe_client
from models.notification_store import NotificationStore
from models.reconcile import reconcile_every
from models.settings import EncryptionConfigError, Settings, get_settings
from models.store import Ledger, make_engine
from models.temporal import connect, ensure_search_attributes, exit_process
from policies.loader import PolicyError, load_policy
from workflows.dunning import DunningWorkflow
from workflows.search_attributes import ALL_KEYS

log = logging.getLogger("dunning.worker")


def build_activities(
    settings: Settings, ledger: Ledger
) -> tuple[StripeActivities, EmailActivities, LedgerActivities]:
    stripe_activities = StripeActivities(
        make_stripe_client(settings), ledger, settings.dunning_policy
    )
    email_activities = EmailActivities(
        make_sendgrid_client(settings),
        NotificationStore(ledger.sessions),
        sender=settings.dunning_email_from,
        update_payment_url=settings.dunning_update_payment_url,
    )
    return stripe_activities, email_activities, LedgerActivities(ledger)


def build_worker(
    client: Client,
    task_queue: str,
    activities: tuple[StripeActivities, EmailActivities, LedgerActivities],
    executor: ThreadPoolExecutor,
    shutdown_seconds: float = 30.0,
) -> Worker:
    stripe_activities, email_activities, ledger_activities = activities
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DunningWorkflow],
        activities=[
            stripe_activities.get_invoice_context,
            stripe_activities.retry_payment,
            stripe_activities.check_invoice,
            stripe_activities.apply_final_action,
            email_activities.send_email,
            ledger_activities.record_support_action,
            ledger_activities.close_case,
        ],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        graceful_shutdown_timeout=timedelta(seconds=shutdown_seconds),
    )


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    load_policy(settings.dunning_policy)  # fail fast, naming the bad file and field
    client = await connect(settings)
    try:
        added = await ensure_search_attributes(client, settings.temporal_namespace, ALL_KEYS)
    except RPCError as err:
        # Temporal Cloud manages search attributes through its own API (tcld / UI), not the
        # operator service: say what to register and keep going.
        added = []
        log.warning(
            "Could not register search attributes (%s). Register them yourself: %s",
            err.message,
            ", ".join(f"{k.name} ({k.indexed_value_type.name})" for k in ALL_KEYS),
        )
    if added:
        log.info("Registered search attributes: %s", ", ".join(added))
    ledger = Ledger(make_engine(settings.database_url))
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(
            client,
            settings.dunning_task_queue,
            build_activities(settings, ledger),
            executor,
            settings.worker_shutdown_seconds,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "Worker on %s/%s, task queue %r, policy %s",
            settings.temporal_address,
            settings.temporal_namespace,
            settings.dunning_task_queue,
            settings.dunning_policy,
        )
        async with worker:
            # Cases terminated or timed out outside the workflow never close their ledger row.
            reconciler = asyncio.create_task(
                reconcile_every(client, ledger, settings.dunning_reconcile_seconds)
            )
            await stop.wait()
            reconciler.cancel()
            log.info(
                "Shutting down (up to %ss for running activities)", settings.worker_shutdown_seconds
            )
    ledger.engine.dispose()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # stripe-python logs every request at INFO; the ledger and history already record them.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    code = 0
    try:
        asyncio.run(run_worker())
    except PolicyError as err:
        log.error("%s", err)
        code = 2
    except EncryptionConfigError as err:  # a setting to fix: one line, no traceback
        log.error("%s", err)
        code = 1
    except Exception:
        log.exception("Worker failed")
        code = 1
    # Not a normal interpreter exit: the SDK's runtime threads can crash it (see exit_process).
    exit_process(code)


if __name__ == "__main__":
    main()
