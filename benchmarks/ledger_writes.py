"""Benchmark: the ledger's writes per message, in autocommit against a transaction each.

    .venv/bin/python benchmarks/ledger_writes.py [--messages 400] [--rounds 3]

What the ledger writes for one customer message, as the worker does it: the case row (once per
case), the claim (the opt-out read and the INSERT) and the settle. Each round runs the same
writes both ways on the same database, alternating: through `models.store.Statements`
(autocommit on its own pool, one round trip per statement) and as a transaction from the
session's pool (pre-ping, BEGIN, the statements, COMMIT), as the ledger wrote them before.
Prints wall time and CPU per message for each, and the ratios. PostgreSQL from
TEST_DATABASE_URL, else a throwaway database on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import update

from benchmarks.cases import database
from models.channel_store import opted_out
from models.ledger import Case, Notification, utcnow
from models.store import Ledger, core, insert_ignore, make_engine, table_of, upsert_for

ADDRESS = "ada@example.com"


def as_statements(ledger: Ledger, key: str) -> None:
    ledger.open_case(**opened(key))
    run = ledger.statements.run
    run(lambda conn: claim(conn, key))
    run(lambda conn: conn.execute(settle(key)))


def as_transactions(ledger: Ledger, key: str) -> None:
    with ledger.sessions.begin() as session:
        insert_ignore(session, Case, opened(key))
    with ledger.sessions.begin() as session:
        claim(core(session), key)
    with ledger.sessions.begin() as session:
        core(session).execute(settle(key))


def opened(key: str) -> dict[str, Any]:
    return {
        "invoice_id": key, "workflow_id": f"dunning-{key}", "customer_id": "cus_bench",
        "amount_due": 1200, "currency": "eur", "policy": "default", "opened_at": utcnow(),
    }  # fmt: skip


def claim(conn: Any, key: str) -> None:
    refused = opted_out(conn, "email", ADDRESS)
    table = table_of(Notification)
    values = {"invoice_id": key, "dedupe_key": f"{key}:step:1", "template": "payment_failed"}
    status = "opted_out" if refused else "claimed"
    conn.execute(
        upsert_for(conn)(table)
        .values(**values, to_address=ADDRESS, status=status, claim_attempt=1)
        .on_conflict_do_nothing()
        .returning(*table.c)
    ).first()


def settle(key: str) -> Any:
    return (
        update(table_of(Notification))
        .where(Notification.dedupe_key == f"{key}:step:1")
        .values(status="sent", provider_message_id="msg_bench", sent_at=utcnow())
    )


def timed(
    write: Callable[[Ledger, str], None], ledger: Ledger, keys: list[str]
) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for key in keys:
        write(ledger, key)
    n = len(keys)
    return (time.perf_counter() - wall) * 1000 / n, (time.process_time() - cpu) * 1000 / n


def main(messages: int, rounds: int) -> None:
    with database() as url:
        ledger = Ledger(make_engine(url))
        totals = {"statements": [0.0, 0.0], "transactions": [0.0, 0.0]}
        ways = {"statements": as_statements, "transactions": as_transactions}
        for way, write in ways.items():  # warm both pools and statement caches
            for i in range(30):
                write(ledger, f"in_warm_{way}_{i}")
        for r in range(rounds):
            for way, write in ways.items():
                keys = [f"in_{way}_{r}_{i}" for i in range(messages)]
                wall, cpu = timed(write, ledger, keys)
                totals[way][0] += wall / rounds
                totals[way][1] += cpu / rounds
        ledger.engine.dispose()
    (sw, sc), (tw, tc) = totals["statements"], totals["transactions"]
    heading = "per message (case row, claim, settle)"
    print(f"\n{heading:40}{'statements':>12}{'transactions':>14}{'ratio':>8}")
    print(f"{'wall ms':40}{sw:>12.2f}{tw:>14.2f}{sw / tw:>8.2f}")
    print(f"{'worker CPU ms':40}{sc:>12.2f}{tc:>14.2f}{sc / tc:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.messages, args.rounds)
