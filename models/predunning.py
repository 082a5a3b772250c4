"""Inputs and results of pre-dunning: the daily card-expiry scan and one PreDunningWorkflow per
card that expires before its subscription renews.

Only Stripe ids, expiry and dates travel through Temporal: the messages' activity reads the
customer's address, name and language from Stripe when it sends, so no personal data sits in
the workflows' histories.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

SCAN_SCHEDULE_ID = "dunning-card-expiry-scan"
SCAN_WORKFLOW = "CardExpiryScanWorkflow"
PREDUNNING_WORKFLOW = "PreDunningWorkflow"
CARD_UPDATED_SIGNAL = "card_updated"
RENEWED_SIGNAL = "renewed"
# How many subscriptions one scan activity reads before it hands back a cursor.
SCAN_PAGE = 200


class PreDunningStatus(StrEnum):
    """The ledger's predunning_cases.status: warned while running, then how it ended."""

    WARNED = "warned"
    CARD_UPDATED = "card_updated"
    RENEWED = "renewed"
    FAILED_ANYWAY = "failed_anyway"


def predunning_workflow_id(payment_method_id: str, exp_year: int, exp_month: int) -> str:
    """One workflow per card and expiry: a later scan finds it, a renewed card (new expiry)
    is a new card."""
    return f"predunning-{payment_method_id}-{exp_year}-{exp_month}"


def card_expires_at(exp_year: int, exp_month: int) -> datetime:
    """A card is valid through the last day of its expiry month: it fails from the first
    instant of the next month (UTC; networks differ by hours at most)."""
    if exp_month == 12:
        return datetime(exp_year + 1, 1, 1, tzinfo=UTC)
    return datetime(exp_year, exp_month + 1, 1, tzinfo=UTC)


class ScanResult(BaseModel):
    subscriptions_read: int = 0
    cards_found: int = 0
    skipped_renewed: int = 0
    started: int = 0
    # A workflow for that card and expiry runs already or has ended: not started again.
    already_running_or_done: int = 0


class ScanInput(BaseModel):
    # Only subscriptions renewing within this many days: a yearly plan is warned about a
    # month ahead, not eleven.
    horizon_days: int = Field(default=30, ge=1, le=400)
    # The reminder goes out this many days before the renewal.
    reminder_days: int = Field(default=3, ge=0, le=60)
    # Continue-as-new passes where the previous run stopped.
    starting_after: str | None = None
    carried: ScanResult | None = None


class ScanPageInput(BaseModel):
    horizon_days: int
    starting_after: str | None = None
    page_size: int = Field(default=SCAN_PAGE, ge=1, le=1000)


class ExpiringCard(BaseModel):
    customer_id: str
    subscription_id: str
    payment_method_id: str
    exp_month: int
    exp_year: int
    renews_at: datetime

    @property
    def workflow_id(self) -> str:
        return predunning_workflow_id(self.payment_method_id, self.exp_year, self.exp_month)


class ScanPage(BaseModel):
    cards: list[ExpiringCard] = Field(default_factory=list)
    subscriptions_read: int = 0
    # Cards whose re-read showed a later expiry (the account updater renewed them).
    skipped_renewed: int = 0
    next_cursor: str | None = None


class PreDunningInput(BaseModel):
    card: ExpiringCard
    reminder_days: int = Field(default=3, ge=0, le=60)
    # Stripe attempts a renewal invoice about an hour after creating it: the outcome is read
    # once that has had time to happen.
    settle_hours: int = Field(default=2, ge=0, le=48)


class CardUpdatedInput(BaseModel):
    stripe_event_id: str
    payment_method_id: str | None = None


class RenewedInput(BaseModel):
    stripe_event_id: str
    invoice_id: str | None = None


class PreDunningState(BaseModel):
    workflow_id: str
    status: PreDunningStatus
    renews_at: datetime
    reminder_at: datetime | None
    messages: list[str]
    ended_by: str | None = None


class PreDunningResult(BaseModel):
    status: PreDunningStatus
    messages: list[str]
    ended_by: str | None = None


class RecordPreDunningInput(BaseModel):
    workflow_id: str
    card: ExpiringCard
    status: PreDunningStatus
    at: datetime


class PreDunningMessageInput(BaseModel):
    workflow_id: str
    message: Literal["warning", "reminder"]
    card: ExpiringCard

    @property
    def dedupe_key(self) -> str:
        return f"{self.workflow_id}:{self.message}"


class PreDunningMessageResult(BaseModel):
    dedupe_key: str
    # sent | no_address | rejected | uncertain (a timeout: SendGrid may hold it; not re-sent)
    # | card_updated (not sent: the renewal no longer charges the expiring card)
    status: str
    provider_message_id: str | None = None
    detail: str | None = None


class RenewalCheckInput(BaseModel):
    card: ExpiringCard


class RenewalCheckResult(BaseModel):
    # None: Stripe has not attempted the renewal yet.
    status: PreDunningStatus | None
    detail: str
