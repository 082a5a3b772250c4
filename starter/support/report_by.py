"""`dunning report --by`: the recovery figures per segment, policy, arm, decline code, channel
or step, over the cases opened in a window (the cohort rule of starter/support/report.py).

Rates count finished cases only (those with an outcome); the open ones are counted apart, so
an arm is never judged on cases still in flight. Per group:

- recovery rate: recovered ÷ finished, with Wilson's 95% interval;
- revenue: recovered amounts per currency (never added across currencies);
- median and p90 time to recover: outcome closed − case opened, over the recovered cases;
- messages and charges per case: per finished case (report_facts explains what counts);
- churn rate: finished cases that ended in the final action (subscription_canceled,
  marked_uncollectible, left_past_due) ÷ finished.

Groupings by case attribute (segment, policy, variant, decline_code) split the cases. The two
about what happened in a case overlap instead:

- channel X: the cases that had a message on X while open (a case with messages on two
  channels is in both rows; "none": no message at all). Recovered in row X means recovered
  after a message on X. Open cases count by the messages they have had so far.
- step N: the cases that reached step N (a charge or message of step N or later);
  recovered in row N means recovered at step N (outcomes.recovered_step = N), so each row's
  rate is "of the finished cases that got this far, how many did this step recover". The row
  with no step holds every case, and its recoveries are those outside the schedule (a new
  card, a support retry, paid elsewhere).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from starter.support import report_sql as sql
from starter.support.report_facts import refresh
from starter.support.report_stats import Interval, Moments, wilson

Dimension = Literal["segment", "policy", "variant", "decline_code", "channel", "step"]
DIMENSIONS: tuple[Dimension, ...] = (
    "segment",
    "policy",
    "variant",
    "decline_code",
    "channel",
    "step",
)


class Filters(BaseModel):
    since: datetime | None = Field(default=None, description="cases opened at or after")
    until: datetime | None = Field(default=None, description="cases opened before")
    segment: str | None = None
    policy: str | None = None
    variant: str | None = None
    experiment: str | None = None


class GroupRow(BaseModel):
    key: int | str | None = Field(description="the group; null: none recorded (step: outside)")
    cases: int = Field(description="finished + open")
    finished: int
    open: int = Field(description="no outcome yet: in no rate")
    recovered: int
    recovery_rate: float | None = Field(description="recovered ÷ finished")
    recovery_interval: Interval | None = Field(description="Wilson 95% interval of the rate")
    revenue: dict[str, int] = Field(description="minor units recovered, per currency")
    median_seconds_to_recover: float | None
    p90_seconds_to_recover: float | None
    messages_per_case: float | None = Field(description="per finished case")
    charges_per_case: float | None = Field(description="per finished case")
    churned: int = Field(description="finished with the final action")
    churn_rate: float | None = Field(description="churned ÷ finished")
    # Per currency, revenue per finished case as count, sum, sum of squares (Welch's test).
    revenue_moments: dict[str, Moments] = Field(default_factory=dict, exclude=True)


class GroupTable(BaseModel):
    by: Dimension
    rows: list[GroupRow]


def compute_by(
    session: Session, by: list[Dimension], filters: Filters | None = None
) -> list[GroupTable]:
    filters = filters or Filters()
    refresh(session)
    return [GroupTable(by=dimension, rows=_rows(session, dimension, filters)) for dimension in by]


def _rows(session: Session, dimension: Dimension, filters: Filters) -> list[GroupRow]:
    where = sql.conditions(sql.facts.c, filters)
    parts: list[sql.Part]
    if dimension == "channel":
        parts = [sql.by_channel()]
    elif dimension == "step":
        parts = [sql.by_step(_steps(session, filters)), sql.outside_schedule()]
    else:
        parts = [sql.by_column(sql.facts.c[sql.COLUMNS[dimension]])]
    finished: dict[Any, dict[str, Any]] = {}
    medians: dict[Any, tuple[float | None, float | None]] = {}
    for source, key, recovered in parts:
        for row in session.execute(sql.finished(source, key, recovered, where)):
            _add(finished.setdefault(row.key, _empty()), row)
        medians.update(sql.percentiles(session, source, key, recovered, where))
    open_counts = sql.open_counts(session, dimension, filters)
    keys = set(finished) | set(open_counts)
    rows = [
        _row(key, finished.get(key, _empty()), open_counts.get(key, 0), medians) for key in keys
    ]
    return sorted(rows, key=_order(dimension))


def _steps(session: Session, filters: Filters) -> Any:
    """The steps 1..N reached by any case in the filter, as a one-column selectable."""
    highest = sql.highest_step(session, filters)
    if not highest:
        return union_all(select(literal(0).label("n")).where(literal(False))).subquery("steps")
    return union_all(*(select(literal(n).label("n")) for n in range(1, highest + 1))).subquery(
        "steps"
    )


def _empty() -> dict[str, Any]:
    return {
        "finished": 0,
        "recovered": 0,
        "revenue": {},
        "moments": {},
        "messages": 0,
        "charges": 0,
        "churned": 0,
    }


def _add(group: dict[str, Any], row: Any) -> None:
    group["finished"] += int(row.finished)
    group["recovered"] += int(row.recovered)
    group["messages"] += int(row.messages or 0)
    group["charges"] += int(row.charges or 0)
    group["churned"] += int(row.churned)
    if int(row.amount or 0):
        group["revenue"][row.currency] = group["revenue"].get(row.currency, 0) + int(row.amount)
    group["moments"][row.currency] = Moments(
        n=int(row.finished), total=float(row.amount or 0), squares=float(row.squares or 0)
    )


def _row(key: Any, group: dict[str, Any], open_count: int, medians: dict[Any, Any]) -> GroupRow:
    finished, recovered = group["finished"], group["recovered"]
    median, p90 = medians.get(key, (None, None))

    def per_case(count: int) -> float | None:
        return count / finished if finished else None

    return GroupRow(
        key=key,
        cases=finished + open_count,
        finished=finished,
        open=open_count,
        recovered=recovered,
        recovery_rate=per_case(recovered),
        recovery_interval=wilson(recovered, finished),
        revenue=dict(sorted(group["revenue"].items())),
        median_seconds_to_recover=median,
        p90_seconds_to_recover=p90,
        messages_per_case=per_case(group["messages"]),
        charges_per_case=per_case(group["charges"]),
        churned=group["churned"],
        churn_rate=per_case(group["churned"]),
        revenue_moments=group["moments"],
    )


def _order(dimension: Dimension) -> Any:
    if dimension == "step":
        return lambda row: (row.key is None, row.key or 0)
    if dimension == "channel":
        return lambda row: (row.key is None, str(row.key or ""))
    return lambda row: (-row.cases, row.key is None, str(row.key or ""))
