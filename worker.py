"""The dunning worker: `python worker.py` (or `dunning worker`).

Env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DUNNING_TASK_QUEUE, DUNNING_POLICY, DATABASE_URL,
STRIPE_API_KEY / STRIPE_API_BASE, SENDGRID_API_KEY / SENDGRID_API_HOST, DUNNING_EMAIL_FROM,
TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / TWILIO_FROM / TWILIO_API_BASE, DUNNING_WEBHOOK_URLS /
DUNNING_WEBHOOK_SECRET.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.card_expiry import CardExpiryActivities
from activities.claim_lookups import ClaimLookups
from activities.email import EmailActivities, make_sendgrid_client
from activities.in_app import InAppActivities
from activities.ledger import LedgerActivities
from activities.merchant_webhooks import MerchantWebhookActivities
from activities.message_copy import PageLink
from activities.sms import SmsActivities
from activities.stripe_billing import StripeActivities
from activities.stripe_subscriptions import StripeSubscriptionActivities
from activities.twilio_client import make_twilio_client
from models.channel_store import ChannelStore
from models.notification_store import NotificationStore
from models.pay_links import link_expiry, pay_url, signing_keys
from models.predunning_schedule import ScheduleSettingError, ensure_schedules, scan_schedule
from models.reconcile import reconcile_every
from models.settings import EncryptionConfigError, Settings, get_settings
from models.store import Ledger, make_engine
from models.stripe_reads import make_stripe_client
from models.temporal import connect, ensure_search_attributes, exit_process
from policies.loader import PolicyError, load_policy
from policies.rules import RulesError, load_rules
from workflows.card_expiry_scan import CardExpiryScanWorkflow
from workflows.dunning import DunningWorkflow
from workflows.predunning import PreDunningWorkflow
from workflows.search_attributes import ALL_KEYS

log = logging.getLogger("dunning.worker")


@dataclass
class Activities:
    """Every activity class, each holding its client. The channels are the `send_{name}`
    activities of policies.schema.CHANNELS: a new channel is a class here and its name there."""

    stripe: StripeActivities
    email: EmailActivities
    ledger: LedgerActivities
    sms: SmsActivities
    in_app: InAppActivities
    webhooks: MerchantWebhookActivities
    subscriptions: StripeSubscriptionActivities
    card_expiry: CardExpiryActivities

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.stripe.get_invoice_context,
            self.stripe.retry_payment,
            self.stripe.check_invoice,
            self.stripe.apply_final_action,
            self.email.send_email,
            self.sms.send_sms,
            self.in_app.send_in_app,
            self.webhooks.send_webhook,
            self.ledger.record_support_action,
            self.ledger.record_customer_action,
            self.subscriptions.pause_subscription,
            self.ledger.close_case,
            self.card_expiry.scan,
            self.card_expiry.check_renewal,
            self.card_expiry.record,
            self.card_expiry.send_email,
        ]


def payment_page_link(settings: Settings) -> PageLink | None:
    """The payment page's link for a case's messages, when DUNNING_LINK_SECRET and
    DUNNING_PUBLIC_URL are set (else messages link to Stripe's hosted invoice page)."""
    if not signing_keys(settings) or not settings.dunning_public_url.strip():
        return None

    def link(invoice_id: str, final_deadline: datetime | None) -> str | None:
        if final_deadline is None:
            return None
        return pay_url(settings, invoice_id, link_expiry(final_deadline))

    return link


def build_activities(settings: Settings, ledger: Ledger) -> Activities:
    notifications = NotificationStore(ledger.sessions)
    webhook_urls = settings.merchant_webhook_urls()
    twilio = None
    if settings.twilio_account_sid:
        twilio = make_twilio_client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_api_base,
            settings.twilio_timeout_seconds,
        )
    public = settings.dunning_public_url.rstrip("/")
    page_link = payment_page_link(settings)
    return Activities(
        stripe=StripeActivities(
            make_stripe_client(settings),
            ledger,
            settings.dunning_policy,
            case_event_channels=["webhook"] if webhook_urls else [],
            rules=load_rules(settings.dunning_rules) if settings.dunning_rules else None,
            quiet_hours=settings.dunning_quiet_hours == "on",
        ),
        email=EmailActivities(
            make_sendgrid_client(settings),
            notifications,
            sender=settings.dunning_email_from,
            update_payment_url=settings.dunning_update_payment_url,
            channels=ChannelStore(ledger.sessions),
            page_link=page_link,
        ),
        ledger=LedgerActivities(ledger),
        sms=SmsActivities(
            twilio,
            notifications,
            ChannelStore(ledger.sessions),
            sender=settings.twilio_from,
            update_payment_url=settings.dunning_update_payment_url,
            status_callback=f"{public}/webhooks/twilio" if public else None,
            page_link=page_link,
        ),
        in_app=InAppActivities(notifications, settings.dunning_update_payment_url, page_link),
        webhooks=MerchantWebhookActivities(
            httpx.Client(timeout=settings.dunning_webhook_timeout_seconds),
            notifications,
            webhook_urls,
            settings.dunning_webhook_secret,
        ),
        subscriptions=StripeSubscriptionActivities(make_stripe_client(settings)),
        card_expiry=CardExpiryActivities(
            make_stripe_client(settings),
            ledger.sessions,
            make_sendgrid_client(settings),
            sender=settings.dunning_email_from,
            update_payment_url=settings.dunning_update_payment_url,
        ),
    )


def build_worker(
    client: Client,
    task_queue: str,
    activities: Activities,
    executor: ThreadPoolExecutor,
    shutdown_seconds: float = 30.0,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DunningWorkflow, CardExpiryScanWorkflow, PreDunningWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        graceful_shutdown_timeout=timedelta(seconds=shutdown_seconds),
    )


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    load_policy(settings.dunning_policy)  # fail fast, naming the bad file and field
    scan_schedule(settings)  # and the card-expiry scan's time and zone
    if settings.dunning_rules:
        load_rules(settings.dunning_rules)  # the same for the segment rules
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
    try:
        log.info("Card-expiry scan schedule %s", await ensure_schedules(client, settings))
    except RPCError as err:
        # The worker still runs cases; `dunning schedules apply` retries it.
        log.warning("Could not apply the card-expiry scan schedule: %s", err.message)
    ledger = Ledger(make_engine(settings.database_url))
    with ThreadPoolExecutor(max_workers=32) as executor:
        activities = build_activities(settings, ledger)
        worker = build_worker(
            client,
            settings.dunning_task_queue,
            activities,
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
                reconcile_every(
                    client,
                    ledger,
                    settings.dunning_reconcile_seconds,
                    ClaimLookups(activities.email, activities.sms).by_channel(),
                )
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
    # twilio-python logs every request's headers at INFO; the ledger records each text.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    code = 0
    try:
        asyncio.run(run_worker())
    except (PolicyError, RulesError) as err:
        log.error("%s", err)
        code = 2
    except (EncryptionConfigError, ScheduleSettingError) as err:  # a setting to fix: one line
        log.error("%s", err)
        code = 1
    except Exception:
        log.exception("Worker failed")
        code = 1
    # Not a normal interpreter exit: the SDK's runtime threads can crash it (see exit_process).
    exit_process(code)


if __name__ == "__main__":
    main()
