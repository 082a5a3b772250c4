"""Inputs and results of the activities (Stripe, notification channels, ledger)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from models.dunning import Outcome
from policies.engine import Trigger
from policies.schema import Channel, FinalAction, Level, Policy, StepTemplate

# Every message a case sends: the policy's step templates and the workflow's own.
Template = StepTemplate | Literal["authentication_needed", "canceled", "recovered"]
SupportAction = Literal["grant_grace", "pause", "resume", "retry_now", "stop"]

InvoiceStatus = Literal["draft", "open", "paid", "uncollectible", "void"]
# What the merchant's systems hear about a case (the webhook channel's event types).
CaseEvent = Literal[
    "dunning.case.opened",
    "dunning.case.step",
    "dunning.case.recovered",
    "dunning.case.final_action",
    "dunning.case.needs_support",
]


class InvoiceContextInput(BaseModel):
    invoice_id: str
    customer_id: str
    subscription_id: str | None = None
    amount_due: int
    currency: str
    policy: str | None = None
    decline_code: str | None = None
    stripe_event_id: str | None = None
    workflow_id: str
    opened_at: datetime


class InvoiceContextResult(BaseModel):
    invoice_status: InvoiceStatus
    customer_name: str | None = None
    customer_email: str | None = None
    locale: str = "en"
    amount_due: int
    amount_remaining: int
    currency: str
    hosted_invoice_url: str | None = None
    subscription_id: str | None = None
    # A canceled subscription (or an invoice no longer open) means there is nothing to dun.
    subscription_status: str | None = None
    # The card Stripe charges by default, and the card whose charge failed (when Stripe says):
    # a default that differs is a new card the customer gave before the case existed.
    default_payment_method: str | None = None
    failed_payment_method: str | None = None
    # The last decline, read from Stripe when the case was opened without one.
    decline_code: str | None = None
    advice_code: str | None = None
    # For the sms channel: Stripe's customer phone (as typed) and address country (the region
    # a national number is read in).
    phone: str | None = None
    country: str | None = None
    # Channels the worker announces case events on (the merchant webhook when endpoints are
    # configured). Recorded in history like the policy: a running case keeps what it opened with.
    case_event_channels: list[Channel] = []
    # The policy is resolved here and recorded in history, so a running case keeps the
    # policy it started with even when the worker's policy file changes (determinism).
    policy: Policy
    # The segment rule that chose the policy (DUNNING_RULES), and why earlier rules did not
    # match; None when no rules are configured or the start request named the policy.
    segment: str | None = None
    segment_reason: str | None = None
    experiment: str | None = None
    # The experiment arm (sticky per experiment and customer); None outside experiments.
    variant: str | None = None
    # The template variant of the arm's messages (`reminder.b.subject.j2`); None: the base.
    message_variant: str | None = None
    # Reaching the customer (models/preferences.py): what support or the customer set, else
    # the Stripe customer, else the policy. Channels in the customer's order; opted-out ones.
    timezone: str | None = None
    preferred_channels: list[Channel] = []
    opted_out_channels: list[Channel] = []
    plan_name: str | None = None


class RetryPaymentInput(BaseModel):
    invoice_id: str
    attempt: int
    trigger: Trigger
    step: int | None = None
    # A card the customer attached or set as default since the failure; None = Stripe's default.
    payment_method: str | None = None
    # Stripe replays a saved 5xx to every retry with the same key: after one, the workflow
    # retries under a new generation of the key (`...:charge:{n}:r{generation}`).
    key_generation: int = Field(default=1, ge=1)


class RetryPaymentResult(BaseModel):
    attempt: int
    idempotency_key: str
    # provider_error: Stripe answered 5xx and the invoice is still open (nothing was charged).
    outcome: Literal["succeeded", "declined", "already_paid", "not_payable", "provider_error"]
    invoice_status: InvoiceStatus | None = None
    amount_paid: int = 0
    decline_code: str | None = None
    advice_code: str | None = None
    error_code: str | None = None
    message: str | None = None


class InvoiceCheckInput(BaseModel):
    invoice_id: str
    customer_id: str


class InvoiceCheckResult(BaseModel):
    """The last look before the final action: is there still something to collect, and with
    which card."""

    invoice_status: InvoiceStatus
    amount_paid: int = 0
    default_payment_method: str | None = None


class FinalActionInput(BaseModel):
    invoice_id: str
    subscription_id: str | None = None
    action: FinalAction
    customer_id: str | None = None
    # The last look at the default card: the cards it must not charge (tried, or the one that
    # may have hard-declined). None: no look at the card.
    known_cards: list[str] | None = None


class FinalActionResult(BaseModel):
    action: FinalAction
    # Not always the action's own outcome: an invoice found paid or voided at the last moment
    # ends the case as recovered or voided, and nothing is canceled. None: nothing was done,
    # because the invoice is open and the customer's default card is `untried_card`.
    outcome: Outcome | None
    detail: str
    amount_paid: int = 0
    untried_card: str | None = None


class NotificationInput(BaseModel):
    """One message (or case event) on one channel: every `send_{channel}` activity takes it.

    `dedupe_key` names the message (`dunning-{invoice}:step:3`); each channel derives its own
    key from it (`channel_key`), so the same step on email and SMS are two messages."""

    invoice_id: str
    dedupe_key: str
    template: Template | None = None
    level: Level | None = None
    step: int | None = None
    to_email: str | None = None
    customer_id: str
    customer_name: str | None = None
    locale: str = "en"
    # The customer's IANA time zone (dates in messages are in it); None: UTC.
    timezone: str | None = None
    # The experiment arm: a template may exist per variant (`reminder.b.subject.j2`).
    variant: str | None = None
    # What the customer pays for (the price's nickname or the product's name) and when the
    # case acts next (the next charge or message); messages name both when known.
    plan_name: str | None = None
    next_step_at: datetime | None = None
    # The payment page link for this case (`/pay/{token}`), when DUNNING_LINK_SECRET is set.
    pay_url: str | None = None
    amount_due: int
    currency: str
    hosted_invoice_url: str | None = None
    action_needed: Literal["update_payment_method", "authenticate"] | None = None
    final_deadline: datetime | None = None
    final_action: FinalAction | None = None
    attempts: int = 0
    channel: Channel = "email"
    to_phone: str | None = None
    country: str | None = None
    # Case events (the webhook channel): what happened, when (workflow time, so that every
    # retry sends the same body), and ids and codes only, never personal data.
    event: CaseEvent | None = None
    occurred_at: datetime | None = None
    subscription_id: str | None = None
    outcome: Outcome | None = None
    reason_code: str | None = None
    reached: list[Channel] = []


# The names the email channel had before there were others (kept for callers and histories).
SendEmailInput = NotificationInput

# sent / duplicate (an earlier attempt settled it) / uncertain (nobody can tell; never re-sent)
# reach or may have reached the customer; no_address (nothing to send to), skipped (opted out,
# channel not configured: `detail` says which) and rejected (the provider refused for good)
# did not, and a `first` chain goes on to the next channel.
NotificationStatus = Literal["sent", "duplicate", "uncertain", "no_address", "skipped", "rejected"]
REACHED: tuple[NotificationStatus, ...] = ("sent", "duplicate", "uncertain")


class NotificationResult(BaseModel):
    dedupe_key: str
    channel: Channel = "email"
    status: NotificationStatus
    provider_message_id: str | None = None
    detail: str | None = None


SendEmailResult = NotificationResult


def channel_key(dedupe_key: str, channel: Channel) -> str:
    """The ledger key of a message on a channel; email keeps the bare key it always had."""
    return dedupe_key if channel == "email" else f"{dedupe_key}:{channel}"


class RecordSupportActionInput(BaseModel):
    invoice_id: str
    request_id: str
    action: SupportAction
    by: str
    reason: str | None = None
    days: int | None = None
    result: str
    at: datetime
    via: Literal["update", "signal"]


class RecordCustomerActionInput(BaseModel):
    """A payment-page action the case accepted (ledger table customer_actions)."""

    invoice_id: str
    request_id: str
    action: str
    # What the customer chose or wrote (a date, a card id, a message to support).
    detail: str | None = None
    result: str
    at: datetime


class PauseSubscriptionInput(BaseModel):
    invoice_id: str
    subscription_id: str
    resumes_at: datetime


class PauseSubscriptionResult(BaseModel):
    # Stripe's pause_collection as it now stands on the subscription.
    behavior: str
    resumes_at: datetime | None = None


class RecordSupportActionResult(BaseModel):
    recorded: bool


class CloseCaseInput(BaseModel):
    """The case's one outcome, written once by the one activity that closes a case."""

    invoice_id: str
    # Enough to open the ledger case when the case ended before its first activity did.
    workflow_id: str
    customer_id: str
    amount_due: int
    opened_at: datetime
    outcome: Outcome
    currency: str
    attempts: int
    amount_recovered: int = 0
    recovered_step: int | None = None
    closed_at: datetime
    reason: str | None = None


class CloseCaseResult(BaseModel):
    recorded: bool
