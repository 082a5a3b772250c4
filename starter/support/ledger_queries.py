"""Read-only ledger queries behind the support console: find cases, build a case's timeline.

Everything here reads the ledger, never Temporal's search attributes: the ledger holds customer
emails and names (deliberately kept out of visibility, see workflows/presentation.py) and it
outlives the namespace's retention period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from models.ledger import (
    Attempt,
    Case,
    CaseFeedback,
    CaseOutcome,
    CustomerAction,
    Notification,
    SupportAction,
    aware,
)
from models.store import Ledger

T = TypeVar("T")

SEARCH_LIMIT = 100

EntryKind = Literal[
    "opened", "attempt", "notification", "support_action", "customer_action", "outcome", "feedback"
]
# Events recorded at the same instant read in the order they happen in a case.
_KIND_ORDER: dict[EntryKind, int] = {
    "opened": 0,
    "attempt": 1,
    "notification": 2,
    "customer_action": 3,
    "support_action": 3,
    "outcome": 4,
    "feedback": 5,
}


@dataclass(frozen=True)
class CaseRow:
    invoice_id: str
    customer_id: str
    customer_email: str | None
    customer_name: str | None
    subscription_id: str | None
    amount_due: int
    currency: str
    policy: str
    first_decline_code: str | None
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None

    @property
    def state(self) -> str:
        """What the ledger alone can say: the outcome, else open."""
        return self.outcome or ("closed" if self.closed_at else "open")


@dataclass(frozen=True)
class TimelineEntry:
    kind: EntryKind
    at: datetime
    # The ORM row itself (detached, fully loaded): templates read its columns directly.
    row: Case | Attempt | Notification | SupportAction | CustomerAction | CaseOutcome | CaseFeedback


async def run_query(ledger: Ledger, query: Callable[[Session], T]) -> T:
    """Run `query(session)` off the event loop: the ledger's engine is synchronous."""

    def run() -> T:
        with ledger.sessions() as session:
            return query(session)

    return await run_in_threadpool(run)


def _case_rows(session: Session, *criteria: object) -> list[CaseRow]:
    stmt = (
        select(Case, CaseOutcome.outcome)
        .outerjoin(CaseOutcome, CaseOutcome.invoice_id == Case.invoice_id)
        .where(*criteria)  # type: ignore[arg-type]
        .order_by(Case.opened_at.desc(), Case.id.desc())
        .limit(SEARCH_LIMIT)
    )
    return [
        CaseRow(
            invoice_id=case.invoice_id,
            customer_id=case.customer_id,
            customer_email=case.customer_email,
            customer_name=case.customer_name,
            subscription_id=case.subscription_id,
            amount_due=case.amount_due,
            currency=case.currency,
            policy=case.policy,
            first_decline_code=case.first_decline_code,
            opened_at=aware(case.opened_at),
            closed_at=aware(case.closed_at) if case.closed_at else None,
            outcome=outcome,
        )
        for case, outcome in session.execute(stmt)
    ]


def find_cases(session: Session, text: str) -> list[CaseRow]:
    """Cases whose invoice id or customer id equals `text`, or whose email equals it
    ignoring case (emails are stored as Stripe has them, so lower() on both sides)."""
    needle = text.strip()
    if not needle:
        return []
    return _case_rows(
        session,
        or_(
            Case.invoice_id == needle,
            Case.customer_id == needle,
            func.lower(Case.customer_email) == needle.lower(),
        ),
    )


def get_case(session: Session, invoice_id: str) -> CaseRow | None:
    rows = _case_rows(session, Case.invoice_id == invoice_id)
    return rows[0] if rows else None


def case_timeline(session: Session, invoice_id: str) -> list[TimelineEntry]:
    """Everything the ledger knows about one case, oldest first."""
    entries: list[TimelineEntry] = []
    case = session.scalars(select(Case).where(Case.invoice_id == invoice_id)).one_or_none()
    if case is not None:
        entries.append(TimelineEntry("opened", aware(case.opened_at), case))
    for attempt in session.scalars(select(Attempt).where(Attempt.invoice_id == invoice_id)):
        entries.append(TimelineEntry("attempt", aware(attempt.attempted_at), attempt))
    for note in session.scalars(select(Notification).where(Notification.invoice_id == invoice_id)):
        entries.append(TimelineEntry("notification", aware(note.created_at), note))
    for action in session.scalars(
        select(SupportAction).where(SupportAction.invoice_id == invoice_id)
    ):
        entries.append(TimelineEntry("support_action", aware(action.at), action))
    for page in session.scalars(
        select(CustomerAction).where(CustomerAction.invoice_id == invoice_id)
    ):
        entries.append(TimelineEntry("customer_action", aware(page.at), page))
    answer = session.scalars(
        select(CaseFeedback).where(CaseFeedback.invoice_id == invoice_id)
    ).one_or_none()
    if answer is not None:
        entries.append(TimelineEntry("feedback", aware(answer.answered_at), answer))
    outcome = session.scalars(
        select(CaseOutcome).where(CaseOutcome.invoice_id == invoice_id)
    ).one_or_none()
    if outcome is not None:
        entries.append(TimelineEntry("outcome", aware(outcome.closed_at), outcome))
    # Row ids break ties within a kind: they follow insertion order.
    entries.sort(key=lambda e: (e.at, _KIND_ORDER[e.kind], e.row.id))
    return entries


def case_view(session: Session, invoice_id: str) -> tuple[CaseRow | None, list[TimelineEntry]]:
    return get_case(session, invoice_id), case_timeline(session, invoice_id)
