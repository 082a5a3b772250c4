"""Benchmark: the recovery report, and `report --by variant`, over a seeded ledger on PostgreSQL.

    .venv/bin/python benchmarks/report.py [--cases 250000] [--runs 7] [--server URL]
    .venv/bin/python benchmarks/report.py --cases 1000000      # 5M ledger rows

Creates a throwaway database on the server (default postgres@127.0.0.1:5432), migrates it to
head, seeds it in SQL with generate_series (per 250k cases: 150k outcomes, 450k attempts,
380k notifications, 20k support actions; half the cases in a two-arm experiment), VACUUM
ANALYZEs it as autovacuum would in production, then times warm: compute_report over all cases
and over the last 30 days; the by-variant report (starter/support/report_by.py) and the
experiment's comparison, after one first run that builds the rollup (migration 0009, timed
once); then compute_report again without migration 0003's index. The baseline, timed in the
same run, is `SELECT count(*) FROM cases`; the ratio is what to compare across machines. The
database is dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models.migrate import scratch_database, upgrade_to_head
from starter.support.report import compute_report
from starter.support.report_by import Filters
from starter.support.report_experiment import compute_grouped

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
CASES = 250_000
# Weights in percent, roughly the mix Stripe reports for recurring-payment declines.
DECLINE_CODES = {
    "insufficient_funds": 34,
    "generic_decline": 18,
    "do_not_honor": 10,
    "expired_card": 9,
    "authentication_required": 5,
    "card_velocity_exceeded": 4,
    "processing_error": 4,
    "try_again_later": 3,
    "incorrect_cvc": 3,
    "lost_card": 2,
    "stolen_card": 2,
    "transaction_not_allowed": 2,
    "card_not_supported": 2,
}  # the remaining 2%: no decline code recorded (NULL)
HARD = "'expired_card', 'lost_card', 'stolen_card', 'card_not_supported', 'transaction_not_allowed'"
CURRENCIES = {"usd": 60, "eur": 30, "gbp": 10}
# Final outcomes of the closed cases.
OUTCOMES = {
    "recovered": 55,
    "subscription_canceled": 18,
    "marked_uncollectible": 8,
    "left_past_due": 7,
    "stopped": 6,
    "already_paid": 4,
    "voided": 2,
}


def _weighted(weights: dict[str, int], size: int = 100) -> str:
    """A SQL array literal where each value appears `weight` times: pick with a random index."""
    values = [name for name, weight in weights.items() for _ in range(weight)]
    values += ["NULL"] * (size - len(values))
    return "ARRAY[" + ",".join(v if v == "NULL" else f"'{v}'" for v in values) + "]::text[]"


def _pick(weights: dict[str, int]) -> str:
    return f"({_weighted(weights)})[1 + floor(random() * 100)::int]"


SEGMENTS = {"smb": 60, "mid": 30, "enterprise": 10}
EXPERIMENT = "retry-timing"


def seed_statements(cases: int) -> list[str]:
    return [
        "SELECT setseed(0.42)",
        # Opened over the last year in id order, as cases arrive in production (so the opened_at
        # index grows at its right edge); ids 1..250k map to invoices in_1..in_250000.
        f"""INSERT INTO cases (id, invoice_id, workflow_id, customer_id, subscription_id,
        customer_email, customer_name, amount_due, currency, policy, segment, experiment,
        variant, first_decline_code, stripe_event_id, opened_at)
    SELECT g, 'in_' || g, 'dunning-in_' || g, 'cus_' || (g % {cases * 18 // 25}),
        'sub_' || g, 'customer' || g || '@example.com', 'Customer ' || g,
        500 + floor(random() * 49500)::int, {_pick(CURRENCIES)},
        CASE WHEN g % 4 = 1 THEN 'patient' ELSE 'default' END, {_pick(SEGMENTS)},
        CASE WHEN g % 2 = 0 THEN '{EXPERIMENT}' END,
        CASE WHEN g % 2 = 1 THEN NULL WHEN (g / 2) % 2 = 0 THEN 'control' ELSE 'B' END,
        {_pick(DECLINE_CODES)}, 'evt_' || g,
        now() - (1 - g / {cases}::float8) * interval '365 days' - random() * interval '1 hour'
    FROM generate_series(1, {cases}) g""",
        # 60% closed (ids with g % 5 < 3): exactly 150k outcomes. Hard declines rarely recover,
        # and then only outside the schedule (the customer put in a new card).
        f"""INSERT INTO outcomes (invoice_id, outcome, amount_recovered, currency, attempts,
        recovered_step, closed_at)
    SELECT c.invoice_id, c.outcome,
        CASE WHEN c.outcome = 'recovered' THEN c.amount_due ELSE 0 END, c.currency,
        1 + (c.id % 4),
        CASE WHEN c.outcome <> 'recovered' OR c.hard OR random() < 0.15 THEN NULL
             ELSE 1 + floor(random() * 4)::int END,
        c.opened_at + CASE WHEN c.outcome = 'recovered' THEN random() * interval '21 days'
                           ELSE interval '21 days' + random() * interval '9 days' END
    FROM (SELECT *, CASE WHEN hard AND drawn = 'recovered' AND random() < 0.7
                         THEN 'subscription_canceled' ELSE drawn END AS outcome
          FROM (SELECT *, {_pick(OUTCOMES)} AS drawn, first_decline_code IN ({HARD}) AS hard
                FROM cases WHERE id % 5 < 3) drawn) c""",
        """UPDATE cases c SET closed_at = o.closed_at
        FROM outcomes o WHERE o.invoice_id = c.invoice_id""",
        # Every case's first charge, a second for 50%, a third for 30%: 1.8 per case.
        """INSERT INTO attempts (invoice_id, attempt_no, idempotency_key, trigger, step, outcome,
        decline_code, amount, attempted_at)
    SELECT c.invoice_id, n, 'dunning-' || c.invoice_id || ':' || n, 'schedule', n, 'declined',
        c.first_decline_code, 0, c.opened_at + (n - 1) * interval '3 days'
    FROM cases c CROSS JOIN generate_series(1, 3) n
    WHERE n = 1 OR (n = 2 AND c.id % 10 < 5) OR (n = 3 AND c.id % 10 < 3)""",
        # 230k rendered emails (92% of cases), with subject and body as the real ones carry.
        """INSERT INTO notifications (invoice_id, dedupe_key, channel, template, level, step,
        to_address, status, claim_attempt, provider_message_id, subject, body_text,
        created_at, sent_at)
    SELECT c.invoice_id, c.invoice_id || '-payment_failed', 'email', 'payment_failed', 'soft', 1,
        c.customer_email, 'sent', 1, 'msg_' || c.id, 'Your payment did not go through',
        repeat('We could not charge your card for invoice ' || c.invoice_id || '. ', 6),
        c.opened_at, c.opened_at
    FROM cases c WHERE c.id % 25 < 23""",
        # And a text at step 2 for 60% of cases: 1.52 messages per case in all.
        """INSERT INTO notifications (invoice_id, dedupe_key, channel, template, level, step,
        to_address, status, claim_attempt, provider_message_id, body_text, created_at, sent_at)
    SELECT c.invoice_id, c.invoice_id || '-step2-sms', 'sms', 'reminder', 'soft', 2,
        '+15550100' || (c.id % 100), 'delivered', 1, 'SM' || c.id,
        'Your payment for ' || c.invoice_id || ' failed again: update your card.',
        c.opened_at + interval '3 days', c.opened_at + interval '3 days'
    FROM cases c WHERE c.id % 5 < 3""",
        # 20k support actions (8% of cases got a grace period).
        """INSERT INTO support_actions (invoice_id, request_id, action, by, reason, days, via,
        result, at)
    SELECT c.invoice_id, 'req_' || c.id, 'grace', 'agent@example.com', 'asked for time', 3,
        'update', 'granted 3 days', c.opened_at + interval '2 days'
    FROM cases c WHERE c.id % 25 >= 23""",
    ]


TABLES = ("cases", "outcomes", "attempts", "notifications", "support_actions")


def seed(engine: sa.Engine, cases: int) -> dict[str, int]:
    with engine.begin() as conn:
        for statement in seed_statements(cases):
            conn.execute(sa.text(statement))
    # Index-only scans need the visibility map that (auto)vacuum maintains.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        return {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0 for t in TABLES}


def timings(run: Callable[[], object], runs: int) -> list[float]:
    run()  # warm: plans, buffers, connection
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        result.append((time.perf_counter() - start) * 1000)
    return result


def main(server: str, runs: int, cases: int) -> None:
    with scratch_database(server, "dunning_report_bench") as url:
        upgrade_to_head(url)
        engine = sa.create_engine(url)
        print(f"Seeding {url.rsplit('/', 1)[-1]}…", flush=True)
        start = time.perf_counter()
        counts = seed(engine, cases)
        print(f"  {sum(counts.values()):,} rows in {time.perf_counter() - start:.1f}s: {counts}")
        month = datetime.now(UTC) - timedelta(days=30)

        def report(since: datetime | None = None) -> Callable[[], object]:
            def run() -> object:
                with Session(engine) as session:
                    return compute_report(session, since=since)

            return run

        def baseline() -> object:
            with engine.connect() as conn:
                return conn.scalar(sa.text("SELECT count(*) FROM cases"))

        def grouped(filters: Filters) -> Callable[[], object]:
            def run() -> object:
                with Session(engine) as session:
                    return compute_grouped(session, ["variant"], filters)

            return run

        base = timings(baseline, runs)
        rows = [
            ("SELECT count(*) FROM cases", base),
            ("compute_report, all cases", timings(report(), runs)),
            ("compute_report, last 30 days", timings(report(month), runs)),
        ]
        start = time.perf_counter()
        grouped(Filters())()
        first = (time.perf_counter() - start) * 1000
        # Autovacuum visits a table after an insert of this size within a minute or so.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE report_facts, report_fact_channels"))
        rows += [
            ("report --by variant (first: rollup)", [first]),
            ("report --by variant, all cases", timings(grouped(Filters()), runs)),
            (
                f"report --experiment {EXPERIMENT}",
                timings(grouped(Filters(experiment=EXPERIMENT)), runs),
            ),
        ]
        with Session(engine) as session:
            arms = compute_grouped(session, [], Filters(experiment=EXPERIMENT))
        with Session(engine) as session:
            full = compute_report(session)
        # The same without migration 0003's index, to show what it is worth.
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_cases_report"))
        rows += [
            ("  without ix_cases_report, all", timings(report(), runs)),
            ("  without ix_cases_report, 30 d", timings(report(month), runs)),
        ]
        with engine.connect() as conn:
            version = str(conn.scalar(sa.text("SHOW server_version")))
        engine.dispose()

    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(
        f"\nPostgreSQL {version}, {os.cpu_count()} CPUs, load average {load};"
        f" {runs} warm runs each, milliseconds"
    )
    print(f"{'':38}{'min':>8}{'median':>8}{'median ÷ baseline':>19}")
    base_median = statistics.median(base)
    for label, values in rows:
        median = statistics.median(values)
        print(f"{label:38}{min(values):>8.1f}{median:>8.1f}{median / base_median:>19.1f}")
    print(
        f"\nall cases: opened {full.opened:,}, recovered {full.recovered:,}"
        f" ({full.recovery_rate or 0:.1%}), in progress {full.in_progress:,},"
        f" {len(full.by_decline_code)} decline codes, {len(full.by_step)} steps"
    )
    for arm in arms.comparison.arms if arms.comparison else []:
        print(f"{EXPERIMENT}: {arm.arm} against control: {arm.verdict_words}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cases", type=int, default=CASES, help="1000000: 5M ledger rows")
    parser.add_argument("--server", default=SERVER, help="an admin URL on the server")
    args = parser.parse_args()
    main(args.server, args.runs, args.cases)
