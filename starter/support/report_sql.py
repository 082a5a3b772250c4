"""The statements behind `report --by` (starter/support/report_by.py): finished cases from
the rollup (report_facts), open cases live from the ledger (they still change).

A grouping is given as parts (source, key, recovered): what to read (the rollup, possibly
joined to channels or steps), the group's key, and what counts as recovered in that group.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    null,
    select,
)
from sqlalchemy.orm import Session

from models.ledger import Case, Notification
from starter.support.report import CANCELED
from starter.support.report_facts import fact_channels, facts, furthest_step, sent_before

if TYPE_CHECKING:
    from starter.support.report_by import Filters

Part = tuple[Any, ColumnElement[Any] | None, ColumnElement[bool]]
COLUMNS = {
    "segment": "segment",
    "policy": "policy",
    "variant": "variant",
    "decline_code": "first_decline_code",
}
# seconds_to_recover is set iff the case recovered (report_facts); in this form the condition
# matches the partial indexes that serve the percentiles (migration 0009).
IS_RECOVERED = facts.c.seconds_to_recover.is_not(None)


def conditions(columns: Any, filters: Filters) -> list[ColumnElement[bool]]:
    """The cohort and the filters, on the cases table or the rollup (same column names)."""
    where: list[ColumnElement[bool]] = []
    if filters.since is not None:
        where.append(columns.opened_at >= filters.since)
    if filters.until is not None:
        where.append(columns.opened_at < filters.until)
    for name in ("segment", "policy", "variant", "experiment"):
        value = getattr(filters, name)
        if value is not None:
            where.append(columns[name] == value)
    return where


def by_column(column: ColumnElement[Any]) -> Part:
    return facts, column, IS_RECOVERED


def by_channel() -> Part:
    joined = facts.outerjoin(fact_channels, fact_channels.c.outcome_id == facts.c.outcome_id)
    return joined, fact_channels.c.channel, IS_RECOVERED


def by_step(steps: Any) -> Part:
    joined = facts.join(steps, steps.c.n <= facts.c.furthest_step)
    return joined, steps.c.n, and_(IS_RECOVERED, facts.c.recovered_step == steps.c.n)


def outside_schedule() -> Part:
    return facts, None, and_(IS_RECOVERED, facts.c.recovered_step.is_(None))


def finished(
    source: Any,
    key: ColumnElement[Any] | None,
    recovered: ColumnElement[bool],
    where: list[ColumnElement[bool]],
) -> Select[Any]:
    amount = cast(facts.c.amount_recovered, Float)
    query = (
        select(
            (key if key is not None else null()).label("key"),
            facts.c.currency,
            func.count().label("finished"),
            func.sum(case((recovered, 1), else_=0)).label("recovered"),
            func.sum(case((recovered, facts.c.amount_recovered), else_=0)).label("amount"),
            func.sum(case((recovered, amount * amount), else_=0.0)).label("squares"),
            func.sum(facts.c.messages).label("messages"),
            func.sum(facts.c.charges).label("charges"),
            func.sum(case((facts.c.outcome.in_(CANCELED), 1), else_=0)).label("churned"),
        )
        .select_from(source)
        .where(*where)
    )
    return query.group_by(*((key,) if key is not None else ()), facts.c.currency)


def percentiles(
    session: Session,
    source: Any,
    key: ColumnElement[Any] | None,
    recovered: ColumnElement[bool],
    where: list[ColumnElement[bool]],
) -> dict[Any, tuple[float | None, float | None]]:
    """Median and p90 of the time to recover, per key (linear interpolation, both engines)."""
    label = (key if key is not None else null()).label("key")
    seconds = facts.c.seconds_to_recover
    grouping = (key,) if key is not None else ()
    if session.get_bind().dialect.name == "postgresql":
        query = (
            select(
                label,
                func.percentile_cont(0.5).within_group(seconds),
                func.percentile_cont(0.9).within_group(seconds),
            )
            .select_from(source)
            .where(recovered, *where)
            .group_by(*grouping)
        )
        return {
            row[0]: (_float(row[1]), _float(row[2]))
            for row in session.execute(query)
            if row[1] is not None
        }
    # SQLite (dev) has no ordered-set aggregates: the durations are fetched.
    durations: dict[Any, list[float]] = {}
    for group, value in session.execute(
        select(label, seconds).select_from(source).where(recovered, *where)
    ):
        durations.setdefault(group, []).append(float(value))
    return {
        group: (_quantile(values, 0.5), _quantile(values, 0.9))
        for group, values in durations.items()
    }


def _float(value: Any) -> float | None:
    # To the millisecond: interpolation leaves float noise that differs between engines.
    return None if value is None else round(float(value), 3)


def _quantile(values: list[float], q: float) -> float:
    """percentile_cont's definition: interpolate between the closest ranks."""
    if len(values) == 1:
        return round(values[0], 3)
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return round(statistics.median(values) if q == 0.5 else cuts[round(q * 10) - 1], 3)


def highest_step(session: Session, filters: Filters) -> int:
    query = select(func.max(facts.c.furthest_step)).where(*conditions(facts.c, filters))
    return int(session.scalar(query) or 0)


def open_counts(session: Session, dimension: str, filters: Filters) -> dict[Any, int]:
    """Open cases (no outcome yet) per group, live from the ledger."""
    cases = Case.__table__.c
    is_open = [cases.closed_at.is_(None), *conditions(cases, filters)]
    if dimension in COLUMNS:
        column = cases[COLUMNS[dimension]]
        query = select(column, func.count()).where(*is_open).group_by(column)
        return {key: int(n) for key, n in session.execute(query)}
    if dimension == "channel":
        per_channel = (
            select(Notification.channel, func.count(distinct(Case.invoice_id)))
            .join(Case, Case.invoice_id == Notification.invoice_id)
            .where(sent_before(None), *is_open)
            .group_by(Notification.channel)
        )
        counts: dict[Any, int] = {key: int(n) for key, n in session.execute(per_channel)}
        messaged = exists().where(Notification.invoice_id == Case.invoice_id, sent_before(None))
        silent = session.scalar(select(func.count()).select_from(Case).where(~messaged, *is_open))
        if silent:
            counts[None] = int(silent)
        return counts
    furthest = furthest_step(session, Case.invoice_id, None)
    reached = select(furthest.label("f")).where(*is_open).subquery()
    histogram: dict[int | None, int] = {
        f: int(n)
        for f, n in session.execute(select(reached.c.f, func.count()).group_by(reached.c.f))
    }
    total = sum(histogram.values())
    highest = max((int(f) for f in histogram if f is not None), default=0)
    counts = {
        n: sum(c for f, c in histogram.items() if f is not None and f >= n)
        for n in range(1, highest + 1)
    }
    if total:
        counts[None] = total
    return counts


def curve(session: Session, filters: Filters) -> tuple[dict[Any, int], list[tuple[Any, int, int]]]:
    """Finished cases per arm, and recoveries per (arm, whole days since the case opened)."""
    where = conditions(facts.c, filters)
    days = facts.c.seconds_to_recover / 86400.0
    day = cast(
        func.floor(days) if session.get_bind().dialect.name == "postgresql" else days, Integer
    )
    per_arm: dict[Any, int] = dict(
        session.execute(
            select(facts.c.variant, func.count()).where(*where).group_by(facts.c.variant)
        ).all()
    )
    recovered = session.execute(
        select(facts.c.variant, day.label("day"), func.count())
        .where(IS_RECOVERED, *where)
        .group_by(facts.c.variant, day)
    ).all()
    return {k: int(v) for k, v in per_arm.items()}, [(v, int(d), int(n)) for v, d, n in recovered]
