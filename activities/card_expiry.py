"""Pre-dunning activities: find cards that expire before their subscription renews, warn the
customer, read how the renewal went, and keep the ledger's predunning_cases rows.

Stripe objects are read in API 2026-10-28 shapes, tolerating older ones: the billing period is
on the subscription items since 2025-03-31.basil (`current_period_end` on the subscription
before). The default card is the subscription's `default_payment_method`, else the customer's
`invoice_settings.default_payment_method` (Stripe's order for charging a renewal).
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

import stripe
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.email import (
    DEDUPE_ARG,
    SendGridRetryableError,
    retryable_status,
    sendgrid_mail,
)
from activities.failures import compact_failures
from models.predunning import (
    ExpiringCard,
    PreDunningMessageInput,
    PreDunningMessageResult,
    PreDunningStatus,
    RecordPreDunningInput,
    RenewalCheckInput,
    RenewalCheckResult,
    ScanPage,
    ScanPageInput,
    card_expires_at,
)
from models.predunning_render import CardFacts, render_predunning
from models.predunning_store import record_predunning
from models.stripe_reads import get, object_id

log = logging.getLogger("dunning.predunning")

# Stripe expands up to four levels; the customer's default card is at level four.
SUBSCRIPTION_EXPAND = [
    "data.default_payment_method",
    "data.customer",
    "data.customer.invoice_settings.default_payment_method",
]
# A renewal invoice is created at the period's end; one from before that is an older one.
RENEWAL_SLACK = timedelta(days=1)


def renews_at(subscription: Any) -> datetime | None:
    """The next renewal: the earliest item period end (API 2025-03-31+), else the
    subscription's own `current_period_end` (older versions)."""
    ends = [get(item, "current_period_end") for item in get(subscription, "items", "data") or []]
    ends = [end for end in ends if end] or [get(subscription, "current_period_end")]
    found = min((int(end) for end in ends if end), default=None)
    return datetime.fromtimestamp(found, UTC) if found is not None else None


def default_card(subscription: Any) -> Any:
    """The payment method a renewal charges (an object when expanded, else an id)."""
    return get(subscription, "default_payment_method") or get(
        subscription, "customer", "invoice_settings", "default_payment_method"
    )


class CardExpiryActivities:
    def __init__(
        self,
        client: stripe.StripeClient,
        sessions: sessionmaker[Session],
        sendgrid: SendGridAPIClient,
        sender: str,
        update_payment_url: str = "",
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.sendgrid = sendgrid
        self.sender = sender
        self.update_payment_url = update_payment_url

    @activity.defn(name="scan_expiring_cards")
    @compact_failures
    def scan(self, input: ScanPageInput) -> ScanPage:
        horizon = datetime.now(UTC) + timedelta(days=input.horizon_days)
        params: Any = {"status": "active", "limit": 100, "expand": SUBSCRIPTION_EXPAND}
        if input.starting_after:
            params["starting_after"] = input.starting_after
        page = ScanPage()
        last = None
        for sub in self.client.v1.subscriptions.list(params=params).auto_paging_iter():
            activity.heartbeat(sub.id)
            page.subscriptions_read += 1
            last = sub.id
            self._examine(sub, horizon, page)
            if page.subscriptions_read >= input.page_size:
                page.next_cursor = last
                break
        return page

    def _examine(self, sub: Any, horizon: datetime, page: ScanPage) -> None:
        renewal = renews_at(sub)
        # A subscription that ends at the period's end, or is paid by invoice, is never
        # charged to the card at renewal.
        if renewal is None or renewal > horizon or get(sub, "cancel_at_period_end"):
            return
        if get(sub, "collection_method") == "send_invoice":
            return
        listed = default_card(sub)
        if not _expires_before(listed, renewal) and get(listed, "object") == "payment_method":
            return
        pm_id = object_id(listed)
        if not pm_id:
            return
        # Read the card again: the card account updater may have renewed it since the list
        # (Stripe updates the PaymentMethod in place, same id, new expiry).
        fresh = self.client.v1.payment_methods.retrieve(pm_id)
        if get(fresh, "type") != "card":
            return
        if not _expires_before(fresh, renewal):
            if _expires_before(listed, renewal):
                page.skipped_renewed += 1
            return
        page.cards.append(
            ExpiringCard(
                customer_id=str(object_id(get(sub, "customer"))),
                subscription_id=sub.id,
                payment_method_id=pm_id,
                exp_month=int(get(fresh, "card", "exp_month")),
                exp_year=int(get(fresh, "card", "exp_year")),
                renews_at=renewal,
            )
        )

    @activity.defn(name="check_renewal")
    @compact_failures
    def check_renewal(self, input: RenewalCheckInput) -> RenewalCheckResult:
        card = input.card
        sub = self.client.v1.subscriptions.retrieve(
            card.subscription_id, params={"expand": ["customer", "latest_invoice"]}
        )
        fresh = self.client.v1.payment_methods.retrieve(card.payment_method_id)
        changed = self._card_changed(card, sub, fresh)
        if changed is not None:
            return RenewalCheckResult(status=PreDunningStatus.CARD_UPDATED, detail=changed)
        invoice = get(sub, "latest_invoice")
        created = get(invoice, "created")
        # The renewal happened once the period moved past it; its invoice is the latest one.
        moved = (renews_at(sub) or card.renews_at) > card.renews_at
        recent = created and datetime.fromtimestamp(int(created), UTC) >= (
            card.renews_at - RENEWAL_SLACK
        )
        if invoice is not None and (moved or recent):
            status = get(invoice, "status")
            if status == "paid":
                return RenewalCheckResult(
                    status=PreDunningStatus.RENEWED, detail=f"renewal {invoice.id} paid"
                )
            if (get(invoice, "attempt_count") or 0) > 0:
                return RenewalCheckResult(
                    status=PreDunningStatus.FAILED_ANYWAY,
                    detail=f"renewal {invoice.id} {status} after a failed charge",
                )
        return RenewalCheckResult(
            status=None, detail=f"subscription {get(sub, 'status')}, renewal not attempted yet"
        )

    @staticmethod
    def _card_changed(card: ExpiringCard, sub: Any, fresh: Any) -> str | None:
        """Why the renewal no longer charges the expiring card (`fresh`: it as Stripe has it
        now), if it does not: the account updater renewed it in place, or the subscription's
        or customer's default changed."""
        if get(fresh, "card") is not None and not _expires_before(fresh, card.renews_at):
            return "the card's expiry was renewed"
        current = object_id(default_card(sub))
        if current and current != card.payment_method_id:
            return "the default card changed"
        return None

    @activity.defn(name="record_predunning")
    @compact_failures
    def record(self, input: RecordPreDunningInput) -> None:
        record_predunning(self.sessions, input.workflow_id, input.card, input.status, input.at)

    @activity.defn(name="send_predunning_email")
    @compact_failures
    def send_email(self, input: PreDunningMessageInput) -> PreDunningMessageResult:
        key = input.dedupe_key
        card = input.card
        sub = self.client.v1.subscriptions.retrieve(
            card.subscription_id, params={"expand": ["customer"]}
        )
        pm = self.client.v1.payment_methods.retrieve(card.payment_method_id)
        changed = self._card_changed(card, sub, pm)
        if changed is not None:  # a card update whose webhook has not arrived (or never will)
            return PreDunningMessageResult(dedupe_key=key, status="card_updated", detail=changed)
        # Read at send time, so no address, name or card digits enter workflow history.
        customer = get(sub, "customer")
        email = get(customer, "email")
        if not email:
            return PreDunningMessageResult(dedupe_key=key, status="no_address")
        locales = get(customer, "preferred_locales") or []
        url = None
        if self.update_payment_url:
            # No invoice yet: a URL naming one gets an empty value there.
            url = self.update_payment_url.format(customer=card.customer_id, invoice="")
        rendered = render_predunning(
            input.message,
            CardFacts(
                customer_name=get(customer, "name"),
                locale=locales[0] if locales else None,
                timezone=get(customer, "metadata", "timezone"),
                brand=get(pm, "card", "brand"),
                last4=get(pm, "card", "last4"),
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                renews_at=card.renews_at,
                update_url=url,
            ),
        )
        body = sendgrid_mail(
            self.sender,
            email,
            rendered.subject,
            rendered.text,
            rendered.html,
            {DEDUPE_ARG: key, "predunning": input.workflow_id},
        )
        try:
            response = self.sendgrid.send(body)
        except HTTPError as exc:
            status = int(exc.status_code)
            if retryable_status(status):
                raise SendGridRetryableError(f"SendGrid answered {status}") from exc
            return PreDunningMessageResult(
                dedupe_key=key, status="rejected", detail=f"SendGrid answered {status}"
            )
        except (TimeoutError, URLError) as exc:
            reason = exc.reason if isinstance(exc, URLError) else exc
            if isinstance(reason, TimeoutError | socket.timeout):
                # SendGrid may have taken it: a warning is not worth the risk of a duplicate.
                return PreDunningMessageResult(
                    dedupe_key=key, status="uncertain", detail="SendGrid did not answer in time"
                )
            raise SendGridRetryableError(f"SendGrid unreachable: {reason}") from exc
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return PreDunningMessageResult(
            dedupe_key=key, status="sent", provider_message_id=message_id
        )


def _expires_before(payment_method: Any, renewal: datetime) -> bool:
    month, year = get(payment_method, "card", "exp_month"), get(payment_method, "card", "exp_year")
    if not month or not year:
        return False
    return card_expires_at(int(year), int(month)) <= renewal
