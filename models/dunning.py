"""Inputs and results of DunningWorkflow and of its signals, updates and query."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer


class CaseStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RECOVERED = "recovered"
    CANCELED = "canceled"
    STOPPED = "stopped"
    ERROR = "error"
    # The workflow ended outside its own path (terminated, timed out, failed, canceled, gone):
    # its DunningStatus search attribute is stale, the ledger outcome (reconciled) is not.
    ENDED = "ended"


class Outcome(StrEnum):
    RECOVERED = "recovered"
    ALREADY_PAID = "already_paid"
    VOIDED = "voided"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    MARKED_UNCOLLECTIBLE = "marked_uncollectible"
    LEFT_PAST_DUE = "left_past_due"
    STOPPED = "stopped"
    # The customer paused the subscription from the payment page (Stripe pause_collection).
    PAUSED_BY_CUSTOMER = "paused_by_customer"
    # Stripe refused something the case cannot do without (the invoice, the final action):
    # the case ends with the reason instead of failing, and a new failure can open a new case.
    ERROR = "error"
    # Reconciled (models/reconcile.py): the workflow ended outside its own path.
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_CANCELED = "workflow_canceled"
    MISSING = "missing"


# Outcomes no workflow writes: the reconciler records them for a workflow that ended elsewhere.
ENDED_OUTSIDE = frozenset(
    {
        Outcome.TERMINATED,
        Outcome.TIMED_OUT,
        Outcome.WORKFLOW_FAILED,
        Outcome.WORKFLOW_CANCELED,
        Outcome.MISSING,
    }
)

# Limits that the validators, the API, the console and the ledger's columns all share.
MAX_BY = 255
MAX_REASON = 500


class DunningInput(BaseModel):
    """How a case starts. Fields the webhook does not know are left out of the JSON (not
    written as null): the case resolves them when it opens and shows them in its details."""

    invoice_id: str
    customer_id: str
    subscription_id: str | None = None
    amount_due: int = Field(ge=0, description="minor units, as Stripe sends them")
    currency: str
    decline_code: str | None = None
    advice_code: str | None = None
    failure_message: str | None = None
    stripe_event_id: str | None = None
    policy: str | None = Field(
        default=None, description="policy name; the worker's default if empty"
    )
    failed_at: datetime | None = None

    @model_serializer(mode="wrap")
    def _known_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class GraceGrant(BaseModel):
    days: int
    reason: str
    by: str
    at: datetime


class DunningState(BaseModel):
    """What the `status` query and every support Update return."""

    invoice_id: str
    customer_id: str
    status: CaseStatus
    outcome: Outcome | None = None
    policy: str
    current_step: int = Field(description="steps of the schedule done so far")
    total_steps: int
    attempts: int
    max_attempts: int
    next_action: str | None = None
    next_action_at: datetime | None = None
    # When the next action charges the card (a step with a retry, or a charge asked for now).
    next_charge_at: datetime | None = None
    final_action: str
    final_deadline: datetime | None = None
    grace: list[GraceGrant] = []
    grace_days_total: int = 0
    last_decline_code: str | None = None
    last_advice_code: str | None = None
    decline_class: str
    notifications_sent: list[str] = []
    paused_reason: str | None = None
    outcome_reason: str | None = None


class DunningResult(BaseModel):
    invoice_id: str
    status: CaseStatus
    outcome: Outcome
    attempts: int
    notifications_sent: int
    grace_days: int
    amount_recovered: int
    currency: str
    recovered_step: int | None = None
    reason: str | None = None


# Stripe-driven signals.


class PaymentSucceededInput(BaseModel):
    stripe_event_id: str | None = None
    amount_paid: int | None = None


class PaymentFailedInput(BaseModel):
    stripe_event_id: str | None = None
    decline_code: str | None = None
    advice_code: str | None = None
    failure_message: str | None = None
    attempt_count: int | None = Field(default=None, description="Stripe's invoice.attempt_count")


class PaymentMethodUpdatedInput(BaseModel):
    stripe_event_id: str | None = None
    payment_method_id: str | None = None


class PaymentActionRequiredInput(BaseModel):
    stripe_event_id: str | None = None
    hosted_invoice_url: str | None = None


class ChannelOptOutInput(BaseModel):
    """The customer opted out of a channel (an SMS STOP), or back in (START): the case skips
    or uses it again from now on."""

    channel: str
    opted_out: bool = True
    source: str | None = None


# Support actions: Updates (validated, with an answer) and Signals of the same meaning.
# Fields are loose on purpose: the validator, not deserialisation, gives the clear message.


class GrantGraceInput(BaseModel):
    days: int
    reason: str = ""
    by: str = ""


class PauseInput(BaseModel):
    reason: str = ""
    by: str = ""


class ResumeInput(BaseModel):
    by: str = ""


class RetryNowInput(BaseModel):
    by: str = ""


class StopInput(BaseModel):
    reason: str = ""
    by: str = ""


class SupportActionResult(BaseModel):
    action: str
    message: str
    state: DunningState


class GrantGraceResult(SupportActionResult):
    new_final_deadline: datetime | None = None


class PauseResult(SupportActionResult):
    pass


class ResumeResult(SupportActionResult):
    pass


class RetryNowResult(SupportActionResult):
    pass


class StopResult(SupportActionResult):
    pass
