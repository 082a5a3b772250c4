"""The ledger store: one class that the worker's activities, the API, the CLI and the report
share to read and write the ledger tables (models/ledger.py).

Writes use INSERT ... ON CONFLICT DO NOTHING on each table's natural key, so an activity that
Temporal retries after a crash never records anything twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models.ledger import Attempt, Case, CaseOutcome, SupportAction, utcnow


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        return create_engine(database_url, connect_args={"check_same_thread": False})
    return create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def upsert_for(session: Session) -> Any:
    """The dialect's INSERT, the one with ON CONFLICT (PostgreSQL in production, SQLite in
    unit tests)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when the row is new.

    Decided by RETURNING, not rowcount: with psycopg 3 (SQLAlchemy's default driver for a plain
    `postgresql://` URL once it is installed) the dialect adds RETURNING for the primary key and
    the cursor's rowcount is -1, which would make every duplicate look new.
    """
    table = table_of(model)
    stmt = (
        upsert_for(session)(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    )
    return core(session).execute(stmt).first() is not None


def table_of(model: Any) -> Table:
    return cast(Table, model.__table__)


def core(session: Session) -> Connection:
    """The session's connection, for a plain INSERT or UPDATE of a table: half the CPU of the
    same statement through the ORM (no ORM statement compilation, no entity loading), in the
    same transaction. Under load the worker's CPU caps the rate (benchmarks/cases_load.py)."""
    return session.connection()


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def open_case(self, **values: Any) -> bool:
        with self.sessions.begin() as session:
            return insert_ignore(session, Case, values)

    def record_attempt(self, **values: Any) -> bool:
        with self.sessions.begin() as session:
            return insert_ignore(session, Attempt, values)

    def record_outcome(
        self,
        invoice_id: str,
        outcome: str,
        currency: str,
        attempts: int,
        amount_recovered: int = 0,
        recovered_step: int | None = None,
        closed_at: datetime | None = None,
        reason: str | None = None,
    ) -> bool:
        closed_at = closed_at or utcnow()
        with self.sessions.begin() as session:
            inserted = insert_ignore(
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
                    "reason": reason,
                },
            )
            core(session).execute(
                update(table_of(Case))
                .where(Case.invoice_id == invoice_id, Case.closed_at.is_(None))
                .values(closed_at=closed_at)
            )
            return inserted

    def case_openings(self, customer_id: str, exclude_invoice: str) -> list[datetime]:
        """When the customer's other cases opened (prior failed invoices, for segment rules)."""
        with self.sessions() as session:
            rows = session.scalars(
                select(Case.opened_at).where(
                    Case.customer_id == customer_id, Case.invoice_id != exclude_invoice
                )
            )
            return list(rows)

    def record_support_action(self, **values: Any) -> bool:
        with self.sessions.begin() as session:
            return insert_ignore(session, SupportAction, values)
