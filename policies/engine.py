"""The pure dunning engine: given a case's state and a moment, what happens next and when.

No I/O and no Temporal import: `DunningWorkflow` interprets the answers with durable timers and
activities, tests explore the rules with hypothesis, and a simulation can replay them offline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from policies.payday import next_payday
from policies.schema import DeclineClass, Policy, Step


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    PAYMENT_METHOD_UPDATED = "payment_method_updated"
    SUPPORT = "support"
    # The customer on the payment page: pay now, or a card they just gave.
    CUSTOMER = "customer"
    # Before the final action: a default card the case never charged.
    LAST_LOOK = "last_look"


class ActionKind(StrEnum):
    RUN_STEP = "run_step"
    RETRY_NOW = "retry_now"
    ASK_CUSTOMER = "ask_customer"
    FINAL_ACTION = "final_action"
    WAIT_FOR_RESUME = "wait_for_resume"
    CLOSED = "closed"


@dataclass(frozen=True)
class CaseState:
    started_at: datetime
    steps_done: int = 0
    auto_attempts: int = 0
    manual_attempts: int = 0
    decline_class: DeclineClass = DeclineClass.SOFT
    grace_days: int = 0
    # What the grace days add to every deadline: days × the policy's grace.day.
    grace_time: timedelta = timedelta(0)
    paused_since: datetime | None = None
    paused_total: timedelta = timedelta(0)
    pending_retry: Trigger | None = None
    customer_notice_due: bool = False
    closed: bool = False
    # When the last charge was attempted: scheduled charges keep the policy's spacing from it.
    last_charge_at: datetime | None = None

    @property
    def attempts(self) -> int:
        return self.auto_attempts + self.manual_attempts


@dataclass(frozen=True)
class NextAction:
    kind: ActionKind
    at: datetime | None = None
    step_index: int | None = None
    charge: bool = False
    trigger: Trigger | None = None
    # Earlier steps that were overdue too and collapse into this one (after an outage).
    skipped_steps: int = 0

    def due(self, now: datetime) -> bool:
        return self.at is not None and self.at <= now


def classify_decline(
    policy: Policy, decline_code: str | None, advice_code: str | None
) -> DeclineClass:
    """Stripe's advice_code, when present, takes precedence over the decline code."""
    rules = policy.declines
    if advice_code and advice_code in rules.advice_codes:
        return rules.advice_codes[advice_code]  # type: ignore[index]
    if decline_code:
        if decline_code in rules.new_payment_method:
            return DeclineClass.NEW_PAYMENT_METHOD
        if decline_code in rules.authentication:
            return DeclineClass.AUTHENTICATION
        if decline_code in rules.soft:
            return DeclineClass.SOFT
    return rules.default


def shift(state: CaseState, now: datetime | None = None) -> timedelta:
    """Grace and paused time push every remaining deadline later by the same amount."""
    paused = state.paused_total
    if state.paused_since is not None and now is not None and now > state.paused_since:
        paused += now - state.paused_since
    return state.grace_time + paused


def step_due(
    policy: Policy,
    state: CaseState,
    index: int,
    now: datetime | None = None,
    country: str | None = None,
    timezone: str | None = None,
) -> datetime:
    """When step `index` runs: its offset, or the customer's next payday for a payday step.

    A payday moves only a step that will charge, and never to or past the next step's time
    (or the final action's). `country`: the customer's (ISO 3166 alpha-2); without one, a
    payday only skips weekends. `timezone`: the customer's, whose dates the paydays are.
    """
    step = policy.steps[index]
    due = state.started_at + step.offset + shift(state, now)
    if step.payday is None or not step_charges(policy, state, step):
        return due
    # Determinism: the engine runs in the workflow and paydays come from the installed
    # `holidays` data. An upgrade that moves a payday moves a case's wait only before its
    # timer is set (a timer already in history is kept; a later day then waits again). It must
    # not move a payday a running case already acted on: that case's replay would wait where
    # its history ran the step. Upgrade `holidays` deliberately, between paydays in flight.
    following = policy.steps[index + 1].offset if index + 1 < len(policy.steps) else None
    room = (policy.final.after if following is None else following) - step.offset
    payday = next_payday(due, country, step.payday.within, timezone)
    return payday if payday is not None and payday - due < room else due


def final_deadline(policy: Policy, state: CaseState, now: datetime | None = None) -> datetime:
    return state.started_at + policy.final.after + shift(state, now)


def step_charges(policy: Policy, state: CaseState, step: Step) -> bool:
    # Only soft declines are retried off-session: Stripe's guidance is that retrying a card
    # that needs replacing or authentication fails again and can hurt the account's standing.
    return (
        step.retry
        and state.decline_class == DeclineClass.SOFT
        and state.auto_attempts < policy.max_attempts
    )


def next_action(
    policy: Policy,
    state: CaseState,
    now: datetime,
    country: str | None = None,
    timezone: str | None = None,
) -> NextAction:
    """`country` and `timezone`: the customer's, for steps with `payday` (see step_due);
    nothing else reads them."""
    if state.closed:
        return NextAction(ActionKind.CLOSED)
    if state.paused_since is not None:
        return NextAction(ActionKind.WAIT_FOR_RESUME)
    if state.pending_retry is not None:
        return NextAction(ActionKind.RETRY_NOW, at=now, charge=True, trigger=state.pending_retry)
    if state.customer_notice_due:
        return NextAction(ActionKind.ASK_CUSTOMER, at=now)
    if state.steps_done < len(policy.steps):
        return _next_step(policy, state, now, country, timezone)
    return NextAction(ActionKind.FINAL_ACTION, at=final_deadline(policy, state))


def _next_step(
    policy: Policy, state: CaseState, now: datetime, country: str | None, timezone: str | None
) -> NextAction:
    first = state.steps_done
    # Steps that are all overdue (a late webhook, a worker outage) collapse to the latest one:
    # one charge and one message, never a burst of them seconds apart.
    index = first
    while (
        index + 1 < len(policy.steps)
        and step_due(policy, state, index + 1, None, country, timezone) <= now
    ):
        index += 1
    at = step_due(policy, state, index, None, country, timezone)
    charge = any(step_charges(policy, state, step) for step in policy.steps[first : index + 1])
    if charge and state.last_charge_at is not None:
        at = max(at, state.last_charge_at + policy.min_charge_spacing)
    return NextAction(
        ActionKind.RUN_STEP,
        at=at,
        step_index=index,
        charge=charge,
        trigger=Trigger.SCHEDULE,
        skipped_steps=index - first,
    )


# Transitions. Each returns a new state; the workflow keeps the latest one.


def after_step(
    state: CaseState, index: int, charged: bool, at: datetime | None = None
) -> CaseState:
    """Step `index` ran (with any overdue steps before it); `charged`: Stripe was asked."""
    return replace(
        state,
        steps_done=max(state.steps_done, index + 1),
        auto_attempts=state.auto_attempts + (1 if charged else 0),
        last_charge_at=at if charged else state.last_charge_at,
    )


def after_retry_now(state: CaseState, charged: bool, at: datetime | None = None) -> CaseState:
    return replace(
        state,
        pending_retry=None,
        manual_attempts=state.manual_attempts + (1 if charged else 0),
        last_charge_at=at if charged else state.last_charge_at,
    )


def after_decline(state: CaseState, decline_class: DeclineClass) -> CaseState:
    needs_customer = decline_class != DeclineClass.SOFT and decline_class != state.decline_class
    return replace(
        state,
        decline_class=decline_class,
        customer_notice_due=state.customer_notice_due or needs_customer,
    )


def after_customer_asked(state: CaseState) -> CaseState:
    return replace(state, customer_notice_due=False)


def close(state: CaseState) -> CaseState:
    return replace(state, closed=True, pending_retry=None, customer_notice_due=False)


def request_retry(state: CaseState, trigger: Trigger) -> CaseState:
    # A new card resets the decline class: the old card's decline says nothing about the new one.
    decline_class = (
        DeclineClass.SOFT if trigger == Trigger.PAYMENT_METHOD_UPDATED else state.decline_class
    )
    return replace(state, pending_retry=trigger, decline_class=decline_class)


def grace_problem(policy: Policy, state: CaseState, days: int) -> str | None:
    """Why a grant of `days` is not allowed, or None when it is."""
    limits = policy.grace
    if state.closed:
        return "the case is closed"
    if days <= 0:
        return "grace must be at least 1 day"
    if days > limits.max_days_per_grant:
        return f"grace is limited to {limits.max_days_per_grant} days per grant"
    remaining = limits.max_total_days - state.grace_days
    if days > remaining:
        return (
            f"grace is limited to {limits.max_total_days} days in total; "
            f"{state.grace_days} already granted, {max(remaining, 0)} left"
        )
    return None


def grant_grace(policy: Policy, state: CaseState, days: int) -> CaseState:
    problem = grace_problem(policy, state, days)
    if problem:
        raise ValueError(problem)
    return replace(
        state,
        grace_days=state.grace_days + days,
        grace_time=state.grace_time + days * policy.grace.day,
    )


def pause(state: CaseState, now: datetime) -> CaseState:
    if state.closed or state.paused_since is not None:
        raise ValueError("the case is closed" if state.closed else "the case is already paused")
    return replace(state, paused_since=now)


def resume(state: CaseState, now: datetime) -> CaseState:
    if state.paused_since is None:
        raise ValueError("the case is not paused")
    paused_for = max(now - state.paused_since, timedelta(0))
    return replace(state, paused_since=None, paused_total=state.paused_total + paused_for)
