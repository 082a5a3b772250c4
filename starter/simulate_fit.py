"""`dunning simulate --fit-from-ledger`: the simulation model's main rates from our own history.

Fitted from the cases opened in a window (tables in models/ledger.py), each rate only when the
ledger holds enough rows for it; every other rate keeps the shipped default, and `notes` says
which is which, with the counts. Fitted:

- the first-decline mix (cases.first_decline_code) and the invoice amounts (cases.amount_due);
- the chance that the first scheduled retry succeeds, per first decline code, and pooled as the
  `default` for the other codes (attempts with trigger `schedule`);
- the chance that a charge on a card the customer gave succeeds (trigger
  `payment_method_updated`);
- per message level, the share of sent messages the customer answered by acting (a new card,
  or paying outside the schedule) before the next message and within `ACT_WINDOW`; and, of
  those actions, the share that were payments.

Kept from the defaults: the retry decay and day factors, `becomes_hard`, the delay before
acting, spontaneous card updates and the reply rate (the ledger does not record replies).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models.ledger import Attempt, Case, CaseOutcome, Notification
from policies.simulation_model import Amount, Decline, SimulationModel

ACT_WINDOW = timedelta(days=7)
MAX_AMOUNT_TIERS = 8


@dataclass(frozen=True)
class Thresholds:
    cases: int = 200
    attempts: int = 50
    messages: int = 50


@dataclass
class Fit:
    model: SimulationModel
    fitted: list[str] = field(default_factory=list)
    defaults: list[str] = field(default_factory=list)


def _window(
    query: sa.Select[*tuple[Any, ...]], since: datetime | None, until: datetime | None
) -> sa.Select[*tuple[Any, ...]]:
    if since is not None:
        query = query.where(Case.opened_at >= since)
    if until is not None:
        query = query.where(Case.opened_at < until)
    return query


def fit_model(
    session: Session,
    base: SimulationModel,
    since: datetime | None = None,
    until: datetime | None = None,
    need: Thresholds = Thresholds(),
) -> Fit:
    fit = Fit(model=base)
    population = base.population.model_dump()
    retry = base.retry.model_dump()
    customer = base.customer.model_dump()

    cases = session.execute(
        _window(sa.select(Case.first_decline_code, Case.amount_due, Case.currency), since, until)
    ).all()
    coded = Counter(code for code, _, _ in cases if code)
    if sum(coded.values()) >= need.cases:
        total = sum(coded.values())
        population["declines"] = [Decline(code=c, share=n / total) for c, n in coded.items()]
        fit.fitted.append(f"decline mix ({total} cases, {len(coded)} codes)")
    else:
        fit.defaults.append(f"decline mix ({sum(coded.values())} cases, need {need.cases})")
    if len(cases) >= need.cases:
        currency, _ = Counter(cur for _, _, cur in cases).most_common(1)[0]
        amounts = Counter(amount for _, amount, cur in cases if cur == currency and amount > 0)
        top = amounts.most_common(MAX_AMOUNT_TIERS)
        kept = sum(n for _, n in top)
        population["currency"] = currency
        population["amounts"] = [Amount(amount=a, share=n / kept) for a, n in top]
        fit.fitted.append(f"amounts in {currency} ({len(cases)} cases, {len(top)} tiers)")
    else:
        fit.defaults.append(f"amounts ({len(cases)} cases, need {need.cases})")

    _fit_retries(session, since, until, need, retry, customer, fit)
    _fit_messages(session, since, until, need, customer, fit)
    fit.defaults.append(
        "retry decay and day factors, becomes_hard, act_after, spontaneous_per_day, reply_rate"
        " (not in the ledger)"
    )
    fit.model = SimulationModel.model_validate(
        {
            **base.model_dump(),
            "name": f"{base.name}+ledger",
            "population": population,
            "retry": retry,
            "customer": customer,
        }
    )
    return fit


def _fit_retries(
    session: Session,
    since: datetime | None,
    until: datetime | None,
    need: Thresholds,
    retry: dict[str, Any],
    customer: dict[str, Any],
    fit: Fit,
) -> None:
    rows = session.execute(
        _window(
            sa.select(Attempt.invoice_id, Attempt.attempt_no, Attempt.trigger, Attempt.outcome)
            .join(Case, Case.invoice_id == Attempt.invoice_id)
            .add_columns(Case.first_decline_code)
            .where(Attempt.outcome.in_(("succeeded", "declined")))
            .order_by(Attempt.invoice_id, Attempt.attempt_no),
            since,
            until,
        )
    ).all()
    first: dict[str, tuple[str | None, bool]] = {}
    card = [0, 0]
    for invoice, _, trigger, outcome, code in rows:
        if trigger == "schedule" and invoice not in first:
            first[invoice] = (code, outcome == "succeeded")
        elif trigger == "payment_method_updated":
            card[0] += int(outcome == "succeeded")
            card[1] += 1
    by_code: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for first_code, succeeded in first.values():
        by_code[first_code or "default"][0] += int(succeeded)
        by_code[first_code or "default"][1] += 1
    success = dict(retry["success"])
    for code, (won, tried) in sorted(by_code.items()):
        if tried >= need.attempts:
            success[code] = won / tried
            fit.fitted.append(f"first-retry success for {code} ({tried} first retries)")
        else:
            fit.defaults.append(f"first-retry success for {code} ({tried}, need {need.attempts})")
    pooled = sum(t for _, t in by_code.values())
    if pooled >= need.attempts:
        success["default"] = sum(w for w, _ in by_code.values()) / pooled
        fit.fitted.append(f"first-retry success, other codes ({pooled} first retries)")
    retry["success"] = success
    if card[1] >= need.attempts:
        customer["new_card_success"] = card[0] / card[1]
        fit.fitted.append(f"new-card charge success ({card[1]} charges)")
    else:
        fit.defaults.append(f"new-card charge success ({card[1]} charges, need {need.attempts})")


def _fit_messages(
    session: Session,
    since: datetime | None,
    until: datetime | None,
    need: Thresholds,
    customer: dict[str, Any],
    fit: Fit,
) -> None:
    sent = session.execute(
        _window(
            sa.select(Notification.invoice_id, Notification.dedupe_key, Notification.level)
            .add_columns(sa.func.coalesce(Notification.sent_at, Notification.created_at))
            .join(Case, Case.invoice_id == Notification.invoice_id)
            .where(Notification.status == "sent"),
            since,
            until,
        )
    ).all()
    cards = session.execute(
        _window(
            sa.select(Attempt.invoice_id, sa.func.min(Attempt.attempted_at))
            .join(Case, Case.invoice_id == Attempt.invoice_id)
            .where(Attempt.trigger == "payment_method_updated")
            .group_by(Attempt.invoice_id),
            since,
            until,
        )
    ).all()
    paid = session.execute(
        _window(
            sa.select(CaseOutcome.invoice_id, CaseOutcome.closed_at)
            .join(Case, Case.invoice_id == CaseOutcome.invoice_id)
            .where(CaseOutcome.outcome == "recovered", CaseOutcome.recovered_step.is_(None)),
            since,
            until,
        )
    ).all()
    acted: dict[str, tuple[datetime, bool]] = {inv: (at, False) for inv, at in cards}
    for invoice, at in paid:
        acted.setdefault(invoice, (at, True))
    by_invoice: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for invoice, key, level, at in sent:
        by_invoice[invoice].append((at, "ask" if ":ask:" in key else (level or "friendly")))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    pays = [0, 0]
    for invoice, messages in by_invoice.items():
        messages.sort()
        action = acted.get(invoice)
        for n, (at, level) in enumerate(messages):
            counts[level][1] += 1
            following = messages[n + 1][0] if n + 1 < len(messages) else None
            if action and at <= action[0] <= at + ACT_WINDOW:
                if following is None or action[0] < following:
                    counts[level][0] += 1
                    pays[0] += int(action[1])
                    pays[1] += 1
    rates = dict(customer["act_on_message"])
    for level, (won, total) in sorted(counts.items()):
        if total >= need.messages:
            rates[level] = won / total
            fit.fitted.append(f"action rate after {level} messages ({total} messages)")
        else:
            fit.defaults.append(
                f"action rate after {level} messages ({total}, need {need.messages})"
            )
    customer["act_on_message"] = rates
    if pays[1] >= need.messages // 5:
        customer["pay_share"] = pays[0] / pays[1]
        fit.fitted.append(f"share who pay rather than give a card ({pays[1]} actions)")
    else:
        fit.defaults.append(f"share who pay ({pays[1]} actions, need {need.messages // 5})")
