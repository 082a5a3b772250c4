"""The report's rollup (migration 0009): one row of figures per finished case.

A case's figures are final once its outcome is recorded, so they are computed once, from the
joins that cost (5M ledger rows: attempts and notifications per case), and every grouped report
reads 1 narrow row per finished case instead. Who keeps it current: the report itself. Each
run first inserts the outcomes recorded since the last one (`refresh`): no activity writes
here and nothing runs in the background, so a worker that is down or an older worker version
can never leave it behind. Deleting its rows is always safe: the next report rebuilds them.

- seconds_to_recover: outcome closed − case opened, set if and only if the case recovered;
- messages: notifications handed to the provider (sent, delivered, undelivered) by then;
- charges: every attempt of the case (scheduled, card update, support retry);
- furthest_step: the highest schedule step a charge or message of the case belonged to (or
  the recovering step); null when the case ended before its first step;
- channels (report_fact_channels): the channels it had a message on before it closed.

Outcome ids are taken with a margin below the highest one seen: an outcome whose transaction
was still open while a later one committed would otherwise be skipped for ever.

models/ledger.py declares no model for these tables yet; the Core tables below mirror 0009.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Table,
    and_,
    case,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.ledger import (
    Attempt,
    Case,
    CaseOutcome,
    Notification,
    ReportFact,
    ReportFactChannel,
)
from starter.support.report_channels import SENT

MARGIN = 10_000
# Up to this many new outcomes, per-outcome index lookups beat hash joins of whole tables.
FEW = 2_000
TS = DateTime(timezone=True)
# Declared with the ledger (models/ledger.py) so migrations and the models agree.
facts = cast(Table, ReportFact.__table__)
fact_channels = cast(Table, ReportFactChannel.__table__)


def sent_before(closed_at: Any) -> Any:
    """A message handed to the provider before `closed_at` (any, when the case is open)."""
    moment = case(
        (Notification.sent_at.is_(None), Notification.created_at), else_=Notification.sent_at
    )
    sent = Notification.status.in_(SENT)
    return sent if closed_at is None else and_(sent, moment < closed_at)


def seconds_between(session: Session, start: Any, end: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_part("epoch", end - start)
    # SQLite stores timestamps as text; julianday() turns them into days.
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def largest(session: Session, *steps: Any) -> Any:
    """The largest non-null step, else NULL."""
    # PostgreSQL's greatest() skips NULLs, SQLite's max(a, b, …) returns NULL: hence -1.
    largest = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    return func.nullif(largest(*(func.coalesce(step, -1) for step in steps)), -1)


def furthest_step(session: Session, invoice_id: Any, closed_at: Any, *more: Any) -> Any:
    """The highest step of the case's charges and messages until `closed_at` (and `more`)."""
    charges = [Attempt.invoice_id == invoice_id]
    if closed_at is not None:
        charges.append(Attempt.attempted_at <= closed_at)
    return largest(
        session,
        select(func.max(Attempt.step)).where(*charges).scalar_subquery(),
        select(func.max(Notification.step))
        .where(Notification.invoice_id == invoice_id, sent_before(closed_at))
        .scalar_subquery(),
        *more,
    )


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def refresh(session: Session) -> int:
    """Add the outcomes recorded since the last run; returns how many were added."""
    mark = int(session.scalar(select(func.coalesce(func.max(facts.c.outcome_id), 0))) or 0)
    known = select(facts.c.outcome_id).where(facts.c.outcome_id == CaseOutcome.id).exists()
    new = and_(CaseOutcome.id > mark - MARGIN, ~known)
    waiting = int(session.scalar(select(func.count()).where(new)) or 0)
    if not waiting:
        return 0
    # Channels first: once its facts row is in, an outcome is no longer new.
    channels = (
        select(CaseOutcome.id, Notification.channel)
        .join(Notification, Notification.invoice_id == CaseOutcome.invoice_id)
        .where(new, sent_before(CaseOutcome.closed_at))
        .distinct()
    )
    session.execute(
        _insert(session, fact_channels)
        .from_select(["outcome_id", "channel"], channels)
        .on_conflict_do_nothing(index_elements=["outcome_id", "channel"])
    )
    # A few: an index lookup per outcome. Many (the first run, a backlog): one pass of joins,
    # over the whole id range: checking each row against the table being filled would scan
    # the rows this very statement inserts, again for every row (quadratic). ON CONFLICT
    # skips the margin's rows that were in already.
    rows = _few(session, new) if waiting <= FEW else _many(session, CaseOutcome.id > mark - MARGIN)
    columns = [column.name for column in facts.columns]
    result: Any = session.execute(
        _insert(session, facts)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["outcome_id"])
    )
    session.commit()
    if waiting > FEW and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics now, not when autovacuum comes: planned as the empty table it was,
        # the next run's anti-join would scan the whole table once per outcome.
        session.execute(text("ANALYZE report_facts, report_fact_channels"))
        session.commit()
    return int(result.rowcount or 0)


def _case_columns(session: Session) -> list[Any]:
    recovered = CaseOutcome.outcome == "recovered"
    return [
        CaseOutcome.id,
        Case.invoice_id,
        Case.opened_at,
        CaseOutcome.closed_at,
        Case.segment,
        Case.policy,
        Case.experiment,
        Case.variant,
        Case.first_decline_code,
        CaseOutcome.currency,
        CaseOutcome.outcome,
        case((recovered, CaseOutcome.amount_recovered), else_=literal(0)),
        CaseOutcome.recovered_step,
        case((recovered, seconds_between(session, Case.opened_at, CaseOutcome.closed_at))),
    ]


def _few(session: Session, new: Any) -> Any:
    return (
        select(
            *_case_columns(session),
            select(func.count())
            .where(Notification.invoice_id == Case.invoice_id, sent_before(CaseOutcome.closed_at))
            .scalar_subquery(),
            select(func.count()).where(Attempt.invoice_id == Case.invoice_id).scalar_subquery(),
            furthest_step(
                session, Case.invoice_id, CaseOutcome.closed_at, CaseOutcome.recovered_step
            ),
        )
        .join(Case, Case.invoice_id == CaseOutcome.invoice_id)
        .where(new)
    )


def _many(session: Session, new: Any) -> Any:
    ids = select(CaseOutcome.id, CaseOutcome.invoice_id, CaseOutcome.closed_at).where(new)
    waiting = ids.subquery("waiting")
    before = Attempt.attempted_at <= waiting.c.closed_at
    charges = (
        select(
            waiting.c.id,
            func.count().label("n"),
            func.max(case((before, Attempt.step))).label("step"),
        )
        .join(Attempt, Attempt.invoice_id == waiting.c.invoice_id)
        .group_by(waiting.c.id)
        .subquery("charges")
    )
    waiting_too = ids.subquery("waiting_too")
    messages = (
        select(
            waiting_too.c.id,
            func.count().label("n"),
            func.max(Notification.step).label("step"),
        )
        .join(Notification, Notification.invoice_id == waiting_too.c.invoice_id)
        .where(sent_before(waiting_too.c.closed_at))
        .group_by(waiting_too.c.id)
        .subquery("messages")
    )
    return (
        select(
            *_case_columns(session),
            func.coalesce(messages.c.n, 0),
            func.coalesce(charges.c.n, 0),
            largest(session, charges.c.step, messages.c.step, CaseOutcome.recovered_step),
        )
        .join(Case, Case.invoice_id == CaseOutcome.invoice_id)
        .outerjoin(charges, charges.c.id == CaseOutcome.id)
        .outerjoin(messages, messages.c.id == CaseOutcome.id)
        .where(new)
    )
