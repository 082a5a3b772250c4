"""Everything a dunning case knows, in one record, with the transitions that change it.

The schedule (steps done, attempts, grace, pause, pending retry) is the pure engine's
`CaseState`; this record adds what the workflow learns from Stripe and support. Every transition
bumps `revision`, which is what the workflow's durable wait wakes on. Nothing derivable is
stored: the policy is the opening context's, the status follows from the outcome and pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from models.activities import InvoiceContextResult
from models.dunning import (
    MAX_BY,
    MAX_REASON,
    CaseStatus,
    DunningInput,
    DunningState,
    GraceGrant,
    Outcome,
    PaymentSucceededInput,
)
from policies import engine
from policies.engine import Trigger
from policies.schema import DeclineClass, Policy
from workflows.channels import Reach
from workflows.presentation import describe_action

OUTCOME_STATUS = {
    Outcome.RECOVERED: CaseStatus.RECOVERED,
    Outcome.ALREADY_PAID: CaseStatus.RECOVERED,
    Outcome.VOIDED: CaseStatus.STOPPED,
    Outcome.STOPPED: CaseStatus.STOPPED,
    Outcome.PAUSED_BY_CUSTOMER: CaseStatus.STOPPED,
    Outcome.SUBSCRIPTION_CANCELED: CaseStatus.CANCELED,
    Outcome.MARKED_UNCOLLECTIBLE: CaseStatus.CANCELED,
    Outcome.LEFT_PAST_DUE: CaseStatus.CANCELED,
    Outcome.ERROR: CaseStatus.ERROR,
}
ENDED_SUBSCRIPTION = ("canceled", "incomplete_expired")  # Stripe: no longer billable


def need_text(text: str, what: str, limit: int) -> None:
    if not text or not text.strip():
        raise ValueError(f"{what} is required")
    if len(text) > limit:
        raise ValueError(f"{what} is limited to {limit} characters")


@dataclass
class Case:
    input: DunningInput
    schedule: engine.CaseState
    context: InvoiceContextResult | None = None
    outcome: Outcome | None = None
    outcome_reason: str | None = None
    amount_recovered: int = 0
    recovered_step: int | None = None
    last_decline_code: str | None = None
    last_advice_code: str | None = None
    grace: list[GraceGrant] = field(default_factory=list)
    paused_reason: str | None = None
    # Stripe said the invoice is paid; the run loop turns it into the recovery.
    external_payment: PaymentSucceededInput | None = None
    busy: Literal["charging", "finalizing"] | None = None
    # The newest card the customer gave us, the cards charged so far, and whether a card came
    # in since the last charge began (it must get a charge of its own).
    payment_method: str | None = None
    tried_payment_methods: list[str] = field(default_factory=list)
    card_since_charge: bool = False
    payday_zone: str | None = None  # whose dates payday steps read (workflows/paydays.py)
    notifications: list[str] = field(default_factory=list)
    reach: Reach = field(default_factory=Reach)
    history: list[str] = field(default_factory=list)
    revision: int = 0

    @classmethod
    def start(cls, input: DunningInput, now: datetime) -> Case:
        return cls(
            input=input,
            schedule=engine.CaseState(started_at=input.failed_at or now),
            last_decline_code=input.decline_code,
            last_advice_code=input.advice_code,
        )

    @property
    def policy(self) -> Policy | None:
        return self.context.policy if self.context else None

    @property
    def closed(self) -> bool:
        return self.outcome is not None

    @property
    def status(self) -> CaseStatus:
        if self.outcome is not None:
            return OUTCOME_STATUS[self.outcome]
        return CaseStatus.PAUSED if self.schedule.paused_since else CaseStatus.ACTIVE

    def amount(self) -> int:
        remaining = self.context.amount_remaining if self.context is not None else 0
        return remaining or self.input.amount_due

    def subscription_id(self) -> str | None:
        return self.input.subscription_id or (
            self.context.subscription_id if self.context else None
        )

    def next_action(self, now: datetime) -> engine.NextAction | None:
        if self.policy is None or self.context is None:
            return None  # the country: for a step that waits for the customer's payday
        where = (self.context.country, self.payday_zone)
        return engine.next_action(self.policy, self.schedule, now, *where)

    def snapshot(self, now: datetime, action: engine.NextAction | None = None) -> DunningState:
        policy = self.policy
        action = action or self.next_action(now)
        pending = action is not None and action.kind != engine.ActionKind.CLOSED
        return DunningState(
            invoice_id=self.input.invoice_id,
            customer_id=self.input.customer_id,
            status=self.status,
            outcome=self.outcome,
            outcome_reason=self.outcome_reason,
            policy=policy.name if policy else (self.input.policy or "default"),
            current_step=self.schedule.steps_done,
            total_steps=len(policy.steps) if policy else 0,
            attempts=self.schedule.attempts,
            max_attempts=policy.max_attempts if policy else 0,
            next_action=describe_action(policy, action) if policy and action and pending else None,
            next_action_at=action.at if action and pending else None,
            next_charge_at=action.at if action and pending and action.charge else None,
            final_action=policy.final.action if policy else "",
            final_deadline=engine.final_deadline(policy, self.schedule, now) if policy else None,
            grace=list(self.grace),
            grace_days_total=self.schedule.grace_days,
            last_decline_code=self.last_decline_code,
            last_advice_code=self.last_advice_code,
            decline_class=self.schedule.decline_class.value,
            notifications_sent=list(self.notifications),
            paused_reason=self.paused_reason,
        )

    # Transitions.

    def log(self, line: str) -> None:
        self.history.append(line)
        self.revision += 1

    def set_schedule(self, schedule: engine.CaseState) -> None:
        self.schedule = schedule
        self.revision += 1

    def opened(self, context: InvoiceContextResult) -> None:
        """The first activity read the invoice: end at once if there is nothing to dun."""
        self.context = context
        self.revision += 1
        if self.closed:  # stopped while opening: the stop stands
            return
        subscription = context.subscription_status
        if context.invoice_status == "paid":
            self.close(Outcome.ALREADY_PAID, "invoice already paid at start")
        elif context.invoice_status == "void":
            self.close(Outcome.VOIDED, "invoice already void at start")
        elif context.invoice_status == "uncollectible":
            self.close(Outcome.MARKED_UNCOLLECTIBLE, "invoice already uncollectible at start")
        elif subscription in ENDED_SUBSCRIPTION:
            self.close(Outcome.STOPPED, f"subscription already {subscription} at start")
        else:
            if not self.last_decline_code and context.decline_code:
                self.last_decline_code = context.decline_code
                self.last_advice_code = context.advice_code
            self.note_decline(self.last_decline_code, self.last_advice_code)
            if context.failed_payment_method:
                self.tried_payment_methods.append(context.failed_payment_method)
            new_default = context.default_payment_method
            if new_default and context.failed_payment_method not in (None, new_default):
                # The customer changed their default card before this case existed (its
                # webhook came while the case could not be reached): charge it now.
                self.new_card(new_default)

    def known_cards(self) -> list[str]:
        """Cards the case charged; when Stripe did not say which card failed, the default at
        opening too: never retry a card that may have hard-declined."""
        opening = self.context.default_payment_method if self.context else None
        named = self.context is not None and self.context.failed_payment_method
        return self.tried_payment_methods + ([opening] if opening and not named else [])

    def note_decline(self, code: str | None, advice: str | None) -> None:
        self.last_decline_code, self.last_advice_code = code, advice
        if self.policy is not None:  # before opening the codes wait for the policy
            decline = engine.classify_decline(self.policy, code, advice)
            self.schedule = engine.after_decline(self.schedule, decline)
        self.revision += 1

    def close(self, outcome: Outcome, reason: str | None = None, amount: int = 0) -> None:
        """The first outcome wins; later ones (a stop racing a recovery) change nothing."""
        if self.closed:
            return
        self.outcome, self.outcome_reason, self.amount_recovered = outcome, reason, amount
        self.schedule = engine.close(self.schedule)
        self.log(f"closed: {self.closing_words()}")

    def closing_words(self) -> str:
        """How the case ended, in words: "recovered (charge succeeded at step 2)"."""
        words = self.outcome.value.replace("_", " ") if self.outcome else "closed"
        return words + (f" ({self.outcome_reason})" if self.outcome_reason else "")

    def recovered(self, amount: int, how: str, step: int | None = None) -> None:
        self.recovered_step = step
        self.close(Outcome.RECOVERED, how, amount or self.amount())

    def stripe_paid(self, input: PaymentSucceededInput) -> None:
        if not self.closed and self.external_payment is None:
            self.external_payment = input
            self.revision += 1

    def new_card(self, payment_method: str | None) -> None:
        if payment_method:
            # Charge the card the customer just gave us, even if it is not (yet) their default.
            self.payment_method = payment_method
        self.card_since_charge = True
        if self.busy is None and self.schedule.pending_retry is None:
            self.request_retry(Trigger.PAYMENT_METHOD_UPDATED)
        self.log("new payment method from the customer")

    def request_retry(self, trigger: Trigger) -> None:
        self.set_schedule(engine.request_retry(self.schedule, trigger))

    def action_required(self) -> None:
        self.set_schedule(
            replace(
                self.schedule, decline_class=DeclineClass.AUTHENTICATION, customer_notice_due=True
            )
        )

    def grant_grace(self, days: int, reason: str, by: str, now: datetime) -> str:
        assert self.policy is not None
        self.set_schedule(engine.grant_grace(self.policy, self.schedule, days))
        self.grace.append(GraceGrant(days=days, reason=reason, by=by, at=now))
        # The new deadline is in the result (new_final_deadline), for each reader's time zone.
        return f"granted {days} days of grace"

    def pause(self, reason: str, now: datetime) -> None:
        self.set_schedule(engine.pause(self.schedule, now))
        self.paused_reason = reason

    def resume(self, now: datetime) -> None:
        self.set_schedule(engine.resume(self.schedule, now))
        self.paused_reason = None

    # Validation: Updates reject with these messages, Signals log and ignore them.

    def check_open(self, opening_ok: bool = False) -> None:
        if self.closed:
            raise ValueError(f"the case is closed: {self.closing_words()}")
        if self.policy is None and not opening_ok:
            raise ValueError("the case is still opening; try again in a few seconds")
        if self.busy == "finalizing":
            raise ValueError(f"the final action ({self.policy.final.action}) is already running")  # type: ignore[union-attr]

    def check_grace(self, days: int, reason: str, by: str) -> None:
        self.check_open()
        assert self.policy is not None
        if problem := engine.grace_problem(self.policy, self.schedule, days):
            raise ValueError(problem)
        need_text(reason, "reason", MAX_REASON)
        need_text(by, "by", MAX_BY)

    def check_pause(self, reason: str, by: str) -> None:
        self.check_open()
        if self.schedule.paused_since is not None:
            raise ValueError("the case is already paused")
        need_text(reason, "reason", MAX_REASON)
        need_text(by, "by", MAX_BY)

    def check_resume(self, by: str) -> None:
        self.check_open()
        if self.schedule.paused_since is None:
            raise ValueError("the case is not paused")
        need_text(by, "by", MAX_BY)

    def check_retry_now(self, by: str) -> None:
        self.check_open()
        if self.schedule.paused_since is not None:
            raise ValueError("the case is paused; resume it first")
        if self.busy == "charging" or self.schedule.pending_retry is not None:
            raise ValueError("a charge is already in progress or queued")
        need_text(by, "by", MAX_BY)

    def check_stop(self, reason: str, by: str) -> None:
        # A stop while the case opens (Stripe voided the invoice) is kept: no charge follows.
        self.check_open(opening_ok=True)
        need_text(reason, "reason", MAX_REASON)
        need_text(by, "by", MAX_BY)
