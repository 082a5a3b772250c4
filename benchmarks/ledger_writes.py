"""Benchmark: the ledger's writes per message, in autocommit against a transaction each.

    .venv/bin/python benchmarks/ledger_writes.py [--messages 400] [--rounds 3]

What the ledger writes for one customer message, as the worker does it: the case row (once per
case), the claim (one INSERT that reads the opt-out list itself) and the settle. Each round
runs the same writes both ways on the same database, alternating: through `models.store.Statements`
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

from benchmarks.cases import database
from models.ledger import Case, utcnow
from models.notification_store import (
    SETTLE,
    NotificationStore,
    Refusal,
    fresh_claim,
    settled_values,
)
from models.store import Ledger, core, insert_ignore, make_engine

ADDRESS = "ada@example.com"


def as_statements(ledger: Ledger, key: str) -> None:
    """As the ledger writes now: each through `Statements`, in autocommit."""
    store = NotificationStore(ledger.sessions)
    ledger.open_case(**opened(key))
    store.claim(1, unless=refusal, **message(key))
    store.settle(f"{key}:step:1", "sent", provider_message_id="msg_bench")


def as_transactions(ledger: Ledger, key: str) -> None:
    """The same statements, each write a transaction from the session's pool (as before)."""
    with ledger.sessions.begin() as session:
        insert_ignore(session, Case, opened(key))
    with ledger.sessions.begin() as session:
        fresh_claim(core(session), 1, refusal, message(key))
    with ledger.sessions.begin() as session:
        sent = settled_values("sent", {"provider_message_id": "msg_bench"})
        core(session).execute(SETTLE, {"settle_key": f"{key}:step:1", **sent})


def opened(key: str) -> dict[str, Any]:
    return {
        "invoice_id": key, "workflow_id": f"dunning-{key}", "customer_id": "cus_bench",
        "amount_due": 1200, "currency": "eur", "policy": "default", "opened_at": utcnow(),
    }  # fmt: skip


def message(key: str) -> dict[str, Any]:
    return {
        "invoice_id": key, "dedupe_key": f"{key}:step:1", "template": "payment_failed",
        "to_address": ADDRESS,
    }  # fmt: skip


# The email channel's suppression-list condition (activities/email.py).
refusal = Refusal("email", ADDRESS, "opted out")


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
