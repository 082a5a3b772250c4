"""The recovery report: what dunning got back, computed from the ledger alone.

Every figure is about one cohort: the cases *opened* in the window [since, until). Outcomes
count for their case whenever they closed, so a rate never divides the cases of one window by
the outcomes of another, and the report for a past month only changes as its cases close.

Two statements. The join of cases to outcomes is what costs (a 250k-case ledger takes a few
hundred milliseconds per pass), so it runs once: a CTE counts the window by (decline code,
outcome, step, currency), at most a few hundred rows, and UNION ALL branches roll that up by
each dimension in the same statement. The median needs the recovered rows themselves; on
PostgreSQL it is `percentile_cont`, on SQLite (the embedded dev default, which has no
ordered-set aggregates) the durations are fetched and the median taken in Python.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from models.dunning import ENDED_OUTSIDE
from models.ledger import Case, CaseOutcome, Notification, utcnow
from models.notification_store import UNSETTLED_AFTER
from starter.support.report_channels import ChannelRow, by_channel
from starter.support.report_customers import (
    FeedbackSummary,
    PreDunningSummary,
    feedback_summary,
    predunning,
)

RECOVERED = "recovered"
# The schedule ran out and the policy's final action was applied.
CANCELED = ("subscription_canceled", "marked_uncollectible", "left_past_due")


class DeclineCodeRow(BaseModel):
    decline_code: str | None = Field(description="cases.first_decline_code; null if unknown")
    opened: int
    closed: int
    recovered: int
    recovery_rate: float | None = Field(description="recovered ÷ opened")


class StepRow(BaseModel):
    step: int | None = Field(
        description="outcomes.recovered_step; null: recovered outside the schedule"
        " (card update, support retry, paid elsewhere)"
    )
    recovered: int
    share: float = Field(description="of all recovered cases in the window")


class RecoveryReport(BaseModel):
    since: datetime | None = Field(description="cases opened at or after this instant")
    until: datetime | None = Field(description="cases opened before this instant")
    opened: int = Field(description="cases opened in the window")
    closed: int = Field(description="of those, cases with an outcome")
    in_progress: int = Field(description="of those, cases without an outcome yet")
    recovered: int
    recovery_rate: float | None = Field(description="recovered ÷ opened; null if none opened")
    recovery_rate_closed: float | None = Field(description="recovered ÷ closed")
    amount_recovered: dict[str, int] = Field(
        description="minor units per currency (lower-case ISO code), recovered outcomes only"
    )
    canceled: int = Field(description="the final action was applied: sum of canceled_by")
    canceled_by: dict[str, int]
    stopped: int = Field(description="stopped by support")
    already_paid: int = Field(description="paid before dunning started")
    voided: int
    errors: int = Field(description="ended with an error: what Stripe refused is outcomes.reason")
    ended_outside: int = Field(
        description="workflows ended outside their own path (terminated, timed out, failed,"
        " gone), closed by the reconciler; how is outcomes.outcome and outcomes.reason"
    )
    unresolved_messages: int = Field(
        description="messages whose delivery is unknown (uncertain, or claimed and never settled)"
    )
    median_seconds_to_recovery: float | None = Field(
        description="median of outcomes.closed_at − cases.opened_at over recovered cases"
    )
    by_decline_code: list[DeclineCodeRow]
    by_step: list[StepRow]
    by_channel: list[ChannelRow] = Field(default_factory=list)
    feedback: FeedbackSummary | None = None
    predunning: PreDunningSummary | None = None


def duration_words(seconds: float | None) -> str:
    """One way to show a duration, on the console's page and in the CLI: "22 s", "14 min",
    "5.2 h", "3.4 days"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """The cohort: cases opened at or after `since` and before `until`."""
    conditions = []
    if since is not None:
        conditions.append(Case.opened_at >= since)
    if until is not None:
        conditions.append(Case.opened_at < until)
    return conditions


def _counts(since: datetime | None, until: datetime | None) -> CompoundSelect[*tuple[Any, ...]]:
    """One row per (kind, key): kind is all | outcome | code | step | currency."""
    cube = (
        select(
            Case.first_decline_code.label("code"),
            CaseOutcome.outcome.label("outcome"),
            CaseOutcome.recovered_step.label("step"),
            CaseOutcome.currency.label("currency"),
            func.count().label("n"),
            func.sum(CaseOutcome.amount_recovered).label("amount"),
        )
        # NULL outcome (no outcome row) is a case still in progress.
        .select_from(Case)
        .outerjoin(CaseOutcome, CaseOutcome.invoice_id == Case.invoice_id)
        .where(*_window(since, until))
        .group_by(Case.first_decline_code, CaseOutcome.outcome, CaseOutcome.recovered_step)
        .group_by(CaseOutcome.currency)
        .cte("cube")
    )
    recovered = cube.c.outcome == RECOVERED

    def rollup(kind: str, **keys: ColumnElement[Any]) -> Select[*tuple[Any, ...]]:
        # Every branch has the same columns; the keys it does not group by are NULL.
        columns: dict[str, ColumnElement[Any]] = {
            "outcome": cast(null(), String),
            "code": cast(null(), String),
            "step": cast(null(), Integer),
            "currency": cast(null(), String),
        }
        columns.update(keys)
        return select(
            literal(kind).label("kind"),
            *(column.label(name) for name, column in columns.items()),
            func.sum(cube.c.n).label("opened"),
            func.sum(case((cube.c.outcome.is_not(None), cube.c.n), else_=0)).label("closed"),
            func.sum(case((recovered, cube.c.n), else_=0)).label("recovered"),
            func.sum(case((recovered, cube.c.amount), else_=0)).label("amount"),
        ).group_by(*keys.values())

    return union_all(
        rollup("all"),
        rollup("outcome", outcome=cube.c.outcome),
        rollup("code", code=cube.c.code),
        rollup("step", step=cube.c.step).where(recovered),
        rollup("currency", currency=cube.c.currency).where(recovered),
    )


def compute_report(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> RecoveryReport:
    rows: dict[str, list[Any]] = {"all": [], "outcome": [], "code": [], "step": [], "currency": []}
    for row in session.execute(_counts(since, until)):
        rows[row.kind].append(row)
    # The "all" branch has no GROUP BY, so it yields one row, with NULL sums on an empty window.
    total = rows["all"][0]
    opened, closed, recovered = (
        int(total.opened or 0),
        int(total.closed or 0),
        int(total.recovered or 0),
    )
    by_outcome = {row.outcome: int(row.opened) for row in rows["outcome"]}

    by_code = sorted(
        (
            DeclineCodeRow(
                decline_code=row.code,
                opened=int(row.opened),
                closed=int(row.closed),
                recovered=int(row.recovered),
                recovery_rate=_rate(int(row.recovered), int(row.opened)),
            )
            for row in rows["code"]
        ),
        key=lambda row: (-row.opened, row.decline_code or ""),
    )
    # Schedule steps in order, then the recoveries outside it.
    by_step = [
        StepRow(step=row.step, recovered=int(row.recovered), share=int(row.recovered) / recovered)
        for row in sorted(rows["step"], key=lambda row: (row.step is None, row.step or 0))
    ]
    canceled_by = {outcome: by_outcome.get(outcome, 0) for outcome in CANCELED}
    return RecoveryReport(
        since=since,
        until=until,
        opened=opened,
        closed=closed,
        in_progress=opened - closed,
        recovered=recovered,
        recovery_rate=_rate(recovered, opened),
        recovery_rate_closed=_rate(recovered, closed),
        amount_recovered={
            row.currency: int(row.amount)
            for row in sorted(rows["currency"], key=lambda row: str(row.currency))
        },
        canceled=sum(canceled_by.values()),
        canceled_by=canceled_by,
        stopped=by_outcome.get("stopped", 0),
        already_paid=by_outcome.get("already_paid", 0),
        voided=by_outcome.get("voided", 0),
        errors=by_outcome.get("error", 0),
        ended_outside=sum(by_outcome.get(outcome, 0) for outcome in ENDED_OUTSIDE),
        unresolved_messages=_unresolved(session, since, until),
        median_seconds_to_recovery=_median_seconds(session, since, until),
        by_decline_code=by_code,
        by_step=by_step,
        by_channel=by_channel(session, _window(since, until)),
        feedback=feedback_summary(session, _window(since, until)),
        predunning=predunning(session, since, until),
    )


def _unresolved(session: Session, since: datetime | None, until: datetime | None) -> int:
    """Messages nobody can vouch for: support should look (see NotificationStore.unresolved)."""
    stale = utcnow() - UNSETTLED_AFTER
    unsettled = or_(
        Notification.status == "uncertain",
        and_(Notification.status == "claimed", Notification.created_at < stale),
    )
    query = (
        select(func.count())
        .select_from(Notification)
        .join(Case, Case.invoice_id == Notification.invoice_id)
        .where(unsettled, *_window(since, until))
    )
    return int(session.scalar(query) or 0)


def _median_seconds(
    session: Session, since: datetime | None, until: datetime | None
) -> float | None:
    def recovered(column: ColumnElement[Any]) -> Select[Any]:
        return (
            select(column)
            .select_from(CaseOutcome)
            .join(Case, Case.invoice_id == CaseOutcome.invoice_id)
            .where(CaseOutcome.outcome == RECOVERED, *_window(since, until))
        )

    if session.get_bind().dialect.name == "postgresql":
        # date_part gives float8; EXTRACT gives numeric since PostgreSQL 14, slower to sort.
        seconds = func.date_part("epoch", CaseOutcome.closed_at - Case.opened_at)
        median = session.scalar(recovered(func.percentile_cont(0.5).within_group(seconds)))
        return None if median is None else float(median)
    # SQLite stores timestamps as text; julianday() turns them into days.
    days = func.julianday(CaseOutcome.closed_at) - func.julianday(Case.opened_at)
    durations = session.scalars(recovered(days)).all()
    # Rounded to the millisecond: julianday() floats are not exact in seconds.
    return round(statistics.median(durations) * 86400, 3) if durations else None
