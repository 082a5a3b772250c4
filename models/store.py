"""The ledger store: one class that the worker's activities, the API, the CLI and the report
share to read and write the ledger tables (models/ledger.py).

Writes use INSERT ... ON CONFLICT DO NOTHING on each table's natural key, so an activity that
Temporal retries after a crash never records anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Table, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from models.later import NO_WAIT, run_later, wait_for_writes
from models.ledger import Attempt, Case, CaseOutcome, SupportAction, utcnow


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        return create_engine(database_url, connect_args={"check_same_thread": False})
    return create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def upsert_for(bind: Session | Connection) -> Any:
    """The dialect's INSERT, the one with ON CONFLICT (PostgreSQL in production, SQLite in
    unit tests)."""
    return upsert_of(core(bind).dialect.name)


def upsert_of(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def insert_ignore(bind: Session | Connection, model: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when the row is new.

    Decided by RETURNING, not rowcount: with psycopg 3 (SQLAlchemy's default driver for a plain
    `postgresql://` URL once it is installed) the dialect adds RETURNING for the primary key and
    the cursor's rowcount is -1, which would make every duplicate look new.
    """
    conn = core(bind)
    statement = _insert_ignore(conn.dialect.name, table_of(model))
    return conn.execute(statement, values).first() is not None


@cache
def _insert_ignore(dialect: str, table: Table) -> Any:
    # Built once, the values passed at execution: building the statement and its cache key
    # for every row cost more CPU than running it (benchmarks/ledger_writes.py).
    return upsert_of(dialect)(table).on_conflict_do_nothing().returning(table.c.id)


def table_of(model: Any) -> Table:
    return cast(Table, model.__table__)


def core(bind: Session | Connection) -> Connection:
    """The session's connection (or the connection itself), for a plain INSERT or UPDATE of a
    table: half the CPU of the same statement through the ORM (no ORM statement compilation,
    no entity loading), in the same transaction. Under load the worker's CPU caps the rate
    (benchmarks/cases_load.py)."""
    return bind if isinstance(bind, Connection) else bind.connection()


T = TypeVar("T")


class Statements:
    """Ledger writes made of idempotent statements (INSERT ... ON CONFLICT DO NOTHING, an
    UPDATE to fixed values, a read), in autocommit on a pool of their own without pre-ping.

    A transaction from the session's pool costs four round trips for one statement: the
    pre-ping, BEGIN, the statement and COMMIT. Here it is the statement alone, and a case
    opening, a claim and a settle together take about half the worker's CPU and wall time
    they took (README, Benchmarks). Pre-ping is what finds a connection that died with a
    PostgreSQL restart; here the first statement on such a connection fails instead,
    SQLAlchemy invalidates the whole pool, and the work runs once more on a fresh connection.
    That is safe because running the work twice leaves the rows as running it once does.
    """

    def __init__(self, engine: Engine) -> None:
        # SQLite (the dev ledger, a few tests) keeps its single writer, in a transaction.
        self.engine = engine
        self._open: Callable[[], AbstractContextManager[Connection]] = engine.begin
        if engine.dialect.name == "postgresql":
            own = create_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_size=10,
                max_overflow=10,
                execution_options={NO_WAIT: True},
            )

            # Its connections close with the session's pool (tests and benchmarks drop their
            # databases right after), once the writes still on their way have landed.
            def dispose(_: Engine) -> None:
                wait_for_writes()
                own.dispose()

            event.listen(engine, "engine_disposed", dispose)
            self.engine, self._open = own, own.connect

    def run(self, work: Callable[[Connection], T]) -> T:
        try:
            with self._open() as conn:
                return work(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with self._open() as conn:  # the pool was invalidated: a fresh connection
            return work(conn)

    def run_later(self, work: Callable[[Connection], object], what: str) -> None:
        """`run`, on the later-writes thread (models/later.py), for a write the case need not
        wait for. In line on SQLite (the dev ledger), whose single writer gains nothing."""
        if self.engine.dialect.name != "postgresql":
            self.run(work)
        else:
            run_later(lambda: self.run(work), what)


_STATEMENTS: WeakKeyDictionary[Engine, Statements] = WeakKeyDictionary()


def statements(bind: Engine | sessionmaker[Session]) -> Statements:
    """The engine's `Statements`, one per engine (the ledger and the stores share it)."""
    engine = bind if isinstance(bind, Engine) else cast(Engine, bind.kw["bind"])
    found = _STATEMENTS.get(engine)
    if found is None:
        found = _STATEMENTS[engine] = Statements(engine)
    return found


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.statements = statements(engine)

    def open_case(self, **values: Any) -> bool:
        return self.statements.run(lambda conn: insert_ignore(conn, Case, values))

    def record_attempt(self, **values: Any) -> bool:
        return self.statements.run(lambda conn: insert_ignore(conn, Attempt, values))

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
        case: dict[str, Any] | None = None,
    ) -> bool:
        """The case's `closed_at`, then its outcome row: two idempotent statements (a crash
        between them is mended by the retry). `case`: the case row's values, written with
        `closed_at` if there is no row yet (a case that ended before its opening wrote one)."""
        closed_at = closed_at or utcnow()
        table = table_of(Case)

        def write(conn: Connection) -> bool:
            if case is None:
                conn.execute(
                    update(table)
                    .where(table.c.invoice_id == invoice_id, table.c.closed_at.is_(None))
                    .values(closed_at=closed_at)
                )
            else:
                opened = upsert_for(conn)(table).values(**case, closed_at=closed_at)
                first = func.coalesce(table.c.closed_at, opened.excluded.closed_at)
                conn.execute(
                    opened.on_conflict_do_update(
                        index_elements=[table.c.invoice_id], set_={"closed_at": first}
                    )
                )
            return insert_ignore(
                conn,
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

        return self.statements.run(write)

    def case_openings(self, customer_id: str, exclude_invoice: str) -> list[datetime]:
        """When the customer's other cases opened (prior failed invoices, for segment rules);
        a case opening with segment rules reads it, so in autocommit (`Statements`)."""
        query = select(Case.opened_at).where(
            Case.customer_id == customer_id, Case.invoice_id != exclude_invoice
        )
        return self.statements.run(lambda conn: list(conn.scalars(query)))

    def record_support_action(self, **values: Any) -> bool:
        return self.statements.run(lambda conn: insert_ignore(conn, SupportAction, values))
