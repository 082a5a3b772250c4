"""`dunning simulate --backtest`: the ledger's real cases of a period under another schedule.

Each case opened in [since, until) is replayed through the other policy with the pure engine,
from its real failure instant and first decline code, with the customer's real card updates at
their real times (each becomes the immediate retry the engine asks for). The replay stops where
the real case stopped (its outcome's `closed_at`, or `now` for a case still open): we know when
the customer paid or gave up, not how the other schedule's charges would have been answered,
so its scheduled charges before that instant count as declined. The answer: how many charges
and messages the other policy would have sent, and when (per day since the failure, per step,
per calendar day in UTC), beside what the ledger shows was really sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models.ledger import Attempt, Case, CaseOutcome, Notification, aware
from policies import engine
from policies.engine import ActionKind, CaseState, Trigger
from policies.schema import Policy


@dataclass(frozen=True)
class RealCase:
    opened_at: datetime
    first_decline_code: str | None
    ended_at: datetime  # the outcome's closed_at, or the replay's `now` when still open
    card_updates: tuple[datetime, ...] = ()


@dataclass
class Backtest:
    policy: str
    cases: int = 0
    charges: int = 0
    messages: int = 0
    final_actions: int = 0
    actual_charges: int = 0
    actual_messages: int = 0
    charges_by_day: Counter[int] = field(default_factory=Counter)
    messages_by_day: Counter[int] = field(default_factory=Counter)
    charges_by_step: Counter[str] = field(default_factory=Counter)
    messages_by_step: Counter[str] = field(default_factory=Counter)
    charges_by_date: Counter[str] = field(default_factory=Counter)
    messages_by_date: Counter[str] = field(default_factory=Counter)

    def add(self, case: RealCase, kind: str, label: str, at: datetime) -> None:
        day = int((at - case.opened_at).total_seconds() // 86400)
        date = at.date().isoformat()
        if kind == "charge":
            self.charges += 1
            self.charges_by_day[day] += 1
            self.charges_by_step[label] += 1
            self.charges_by_date[date] += 1
        else:
            self.messages += 1
            self.messages_by_day[day] += 1
            self.messages_by_step[label] += 1
            self.messages_by_date[date] += 1


def replay(policy: Policy, case: RealCase, into: Backtest) -> None:
    """Drive the engine as the workflow would, until the real case's end or the final action."""
    decline = engine.classify_decline(policy, case.first_decline_code, None)
    state = engine.after_decline(CaseState(started_at=case.opened_at), decline)
    cards = sorted(case.card_updates)
    now, end = case.opened_at, case.ended_at
    into.cases += 1
    if end <= case.opened_at:  # paid, void or stopped as it opened: nothing was ever due
        return
    while True:
        action = engine.next_action(policy, state, now)
        if cards and (action.at is None or cards[0] < action.at):
            if cards[0] > end:
                return
            now = cards.pop(0)
            state = engine.request_retry(state, Trigger.PAYMENT_METHOD_UPDATED)
            continue
        # Inclusive: what happened at the very instant the real case ended still happened.
        if action.at is None or action.at > end:
            return
        now = max(now, action.at)
        if action.kind == ActionKind.FINAL_ACTION:
            into.final_actions += 1
            return
        if action.kind == ActionKind.RETRY_NOW:
            into.add(case, "charge", "new card", now)
            state = engine.after_retry_now(state, True, now)
        elif action.kind == ActionKind.ASK_CUSTOMER:
            into.add(case, "message", "ask", now)
            state = engine.after_customer_asked(state)
        elif action.kind == ActionKind.RUN_STEP:
            assert action.step_index is not None
            label = f"step {action.step_index + 1}"
            if action.charge:
                into.add(case, "charge", label, now)
            state = engine.after_step(state, action.step_index, action.charge, now)
            if policy.steps[action.step_index].template:
                into.add(case, "message", label, now)
        else:  # closed or paused: nothing more a replay can do
            return


def load_cases(session: Session, since: datetime, until: datetime, now: datetime) -> list[RealCase]:
    rows = session.execute(
        sa.select(Case.invoice_id, Case.opened_at, Case.first_decline_code, CaseOutcome.closed_at)
        .outerjoin(CaseOutcome, CaseOutcome.invoice_id == Case.invoice_id)
        .where(Case.opened_at >= since, Case.opened_at < until)
        .order_by(Case.opened_at, Case.invoice_id)
    ).all()
    updates: dict[str, list[datetime]] = {}
    for invoice, at in session.execute(
        sa.select(Attempt.invoice_id, Attempt.attempted_at)
        .join(Case, Case.invoice_id == Attempt.invoice_id)
        .where(Case.opened_at >= since, Case.opened_at < until)
        .where(Attempt.trigger == Trigger.PAYMENT_METHOD_UPDATED.value)
    ):
        updates.setdefault(invoice, []).append(at)
    return [
        RealCase(
            aware(opened),
            code,
            aware(closed) if closed else now,
            tuple(aware(at) for at in updates.get(invoice, ())),
        )
        for invoice, opened, code, closed in rows
    ]


def actual_counts(session: Session, since: datetime, until: datetime) -> tuple[int, int]:
    """Charges and sent messages the ledger holds for the cases opened in the window."""
    opened = sa.select(Case.invoice_id).where(Case.opened_at >= since, Case.opened_at < until)
    charges = session.scalar(
        sa.select(sa.func.count()).select_from(Attempt).where(Attempt.invoice_id.in_(opened))
    )
    messages = session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.invoice_id.in_(opened), Notification.status == "sent")
    )
    return charges or 0, messages or 0


def backtest(
    session: Session, policy: Policy, since: datetime, until: datetime, now: datetime
) -> Backtest:
    result = Backtest(policy=policy.name)
    for case in load_cases(session, since, until, now):
        replay(policy, case, result)
    result.actual_charges, result.actual_messages = actual_counts(session, since, until)
    return result
