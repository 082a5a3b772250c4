"""Ledger writes, done inside the activity that did the work, plus the support-action activity.

Writes use INSERT ... ON CONFLICT DO NOTHING on each table's natural key, so an activity that
Temporal retries after a crash never records anything twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from models.activities import RecordSupportActionInput, RecordSupportActionResult
from models.ledger import Attempt, Case, CaseOutcome, Notification, SupportAction, utcnow


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        return create_engine(database_url, connect_args={"check_same_thread": False})
    return create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def _insert_ignore(self, session: Session, model: type, values: dict[str, Any]) -> bool:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(model).values(**values).on_conflict_do_nothing()
        return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def open_case(self, **values: Any) -> bool:
        with self.sessions.begin() as session:
            return self._insert_ignore(session, Case, values)

    def update_case_contact(self, invoice_id: str, email: str | None, name: str | None) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Case)
                .where(Case.invoice_id == invoice_id)
                .values(customer_email=email, customer_name=name)
            )

    def record_attempt(self, **values: Any) -> bool:
        with self.sessions.begin() as session:
            return self._insert_ignore(session, Attempt, values)

    def record_outcome(
        self,
        invoice_id: str,
        outcome: str,
        currency: str,
        attempts: int,
        amount_recovered: int = 0,
        recovered_step: int | None = None,
        closed_at: datetime | None = None,
    ) -> bool:
        closed_at = closed_at or utcnow()
        with self.sessions.begin() as session:
            inserted = self._insert_ignore(
                session,
                CaseOutcome,
                {
                    "invoice_id": invoice_id,
                    "outcome": outcome,
                    "currency": currency,
                    "attempts": attempts,
                    "amount_recovered": amount_recovered,
                    "recovered_step": recovered_step,
                    "closed_at": closed_at,
                },
            )
            session.execute(
                update(Case)
                .where(Case.invoice_id == invoice_id, Case.closed_at.is_(None))
                .values(closed_at=closed_at)
            )
            return inserted

    def case_money(self, invoice_id: str) -> tuple[str, int]:
        """The case's currency and the amount that was due when it opened."""
        with self.sessions() as session:
            row = session.execute(
                select(Case.currency, Case.amount_due).where(Case.invoice_id == invoice_id)
            ).first()
        return (row.currency, row.amount_due) if row else ("usd", 0)

    def record_support_action(self, **values: Any) -> bool:
        with self.sessions.begin() as session:
            return self._insert_ignore(session, SupportAction, values)

    # Notifications: claim before sending, settle after, so a retry can tell what happened.

    def claim_notification(self, attempt: int, **values: Any) -> tuple[bool, Notification]:
        """Claim the dedupe key. Returns (claimed, row); not claimed means do not send."""
        with self.sessions.begin() as session:
            if self._insert_ignore(
                session, Notification, {**values, "status": "claimed", "claim_attempt": attempt}
            ):
                row = session.scalars(
                    select(Notification).where(Notification.dedupe_key == values["dedupe_key"])
                ).one()
                return True, row
            row = session.scalars(
                select(Notification)
                .where(Notification.dedupe_key == values["dedupe_key"])
                .with_for_update()
            ).one()
            if row.status == "failed_retryable":
                row.status, row.claim_attempt, row.error = "claimed", attempt, None
                return True, row
            if row.status == "claimed" and row.claim_attempt != attempt:
                # An earlier attempt claimed the key and never settled it: the worker died
                # between the HTTP call and the commit. SendGrid may have the message, so
                # sending again could duplicate it; at most once wins.
                row.status = "uncertain"
                row.error = f"attempt {row.claim_attempt} did not finish; not re-sent"
            return False, row

    def settle_notification(self, dedupe_key: str, status: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            extra = {"sent_at": utcnow()} if status == "sent" else {}
            session.execute(
                update(Notification)
                .where(Notification.dedupe_key == dedupe_key)
                .values(status=status, **values, **extra)
            )


class LedgerActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn(name="record_support_action")
    def record_support_action(self, input: RecordSupportActionInput) -> RecordSupportActionResult:
        recorded = self.ledger.record_support_action(
            invoice_id=input.invoice_id,
            request_id=input.request_id,
            action=input.action,
            by=input.by,
            reason=input.reason,
            days=input.days,
            via=input.via,
            result=input.result,
            at=input.at,
        )
        if input.closes_with is not None:
            self.ledger.record_outcome(
                input.invoice_id,
                input.closes_with.value,
                currency=self.ledger.case_money(input.invoice_id)[0],
                attempts=input.attempts,
                closed_at=input.at,
            )
        return RecordSupportActionResult(recorded=recorded)
