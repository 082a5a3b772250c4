"""The recovery report over a small ledger with known answers, and `dunning report`.

The cases are opened in March 2001, a window no other test writes to, so the session's shared
PostgreSQL database can hold other tests' cases too. They go in through the same Ledger
methods the activities use.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from models.migrate import upgrade_to_head
from models.notification_store import NotificationStore
from models.settings import get_settings
from models.store import Ledger, make_engine
from standins.server import free_port
from starter.cli import app
from starter.support.report import (
    DeclineCodeRow,
    RecoveryReport,
    StepRow,
    compute_report,
)
from starter.support.report_customers import FeedbackSummary, PreDunningSummary

SINCE = datetime(2001, 3, 1, tzinfo=UTC)
UNTIL = datetime(2001, 4, 1, tzinfo=UTC)
DAY = timedelta(days=1)
# code, currency, amount due, outcome (None: in progress), recovered step, days to close.
CASES: list[tuple[str | None, str, int, str | None, int | None, int]] = [
    ("insufficient_funds", "usd", 1000, "recovered", 1, 2),
    ("insufficient_funds", "usd", 2500, "recovered", 2, 5),
    ("insufficient_funds", "eur", 4000, "recovered", None, 1),  # new card, outside the schedule
    ("insufficient_funds", "usd", 1500, "subscription_canceled", None, 28),
    ("insufficient_funds", "gbp", 600, None, None, 0),
    ("expired_card", "usd", 999, "recovered", None, 3),
    ("expired_card", "gbp", 2000, "marked_uncollectible", None, 28),
    ("generic_decline", "eur", 3000, "left_past_due", None, 28),
    ("generic_decline", "eur", 500, "stopped", None, 4),
    ("generic_decline", "gbp", 5000, "recovered", 3, 10),
    ("do_not_honor", "usd", 800, "voided", None, 0),
    ("do_not_honor", "usd", 1200, None, None, 0),
    (None, "usd", 700, "already_paid", None, 0),
]
# Recovered in 1, 2, 3, 5 and 10 days: the median is 3 days.
EXPECTED = RecoveryReport(
    since=SINCE,
    until=UNTIL,
    opened=13,
    closed=11,
    in_progress=2,
    recovered=5,
    recovery_rate=5 / 13,
    recovery_rate_closed=5 / 11,
    amount_recovered={"eur": 4000, "gbp": 5000, "usd": 1000 + 2500 + 999},
    canceled=3,
    canceled_by={"subscription_canceled": 1, "marked_uncollectible": 1, "left_past_due": 1},
    stopped=1,
    already_paid=1,
    voided=1,
    errors=0,
    ended_outside=0,
    unresolved_messages=0,
    median_seconds_to_recovery=3 * 86400.0,
    by_decline_code=[
        DeclineCodeRow(
            decline_code="insufficient_funds", opened=5, closed=4, recovered=3, recovery_rate=0.6
        ),
        DeclineCodeRow(
            decline_code="generic_decline", opened=3, closed=3, recovered=1, recovery_rate=1 / 3
        ),
        # Equal counts: by code, alphabetically.
        DeclineCodeRow(
            decline_code="do_not_honor", opened=2, closed=1, recovered=0, recovery_rate=0.0
        ),
        DeclineCodeRow(
            decline_code="expired_card", opened=2, closed=2, recovered=1, recovery_rate=0.5
        ),
        DeclineCodeRow(decline_code=None, opened=1, closed=1, recovered=0, recovery_rate=0.0),
    ],
    by_step=[
        StepRow(step=1, recovered=1, share=0.2),
        StepRow(step=2, recovered=1, share=0.2),
        StepRow(step=3, recovered=1, share=0.2),
        StepRow(step=None, recovered=2, share=0.4),
    ],
    # The question is asked of recovered, canceled and customer-paused cases: 5 + 1 here.
    feedback=FeedbackSummary(asked=6, answered=0, response_rate=0.0, by_reason=[], recent_texts=[]),
    predunning=PreDunningSummary(
        warned=0, card_updated=0, renewed=0, failed_anyway=0, open=0, saved_rate=None
    ),
)


def seed(ledger: Ledger) -> None:
    prefix = f"in_report_{uuid.uuid4().hex[:8]}"

    def add(
        n: int, opened: datetime, row: tuple[str | None, str, int, str | None, int | None, int]
    ) -> None:
        code, currency, amount, outcome, step, days = row
        invoice = f"{prefix}_{n}"
        ledger.open_case(
            invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_report",
            amount_due=amount, currency=currency, policy="default", first_decline_code=code,
            opened_at=opened,
        )  # fmt: skip
        if outcome is not None:
            ledger.record_outcome(
                invoice, outcome, currency, attempts=1,
                amount_recovered=amount if outcome == "recovered" else 0, recovered_step=step,
                closed_at=opened + days * DAY,
            )  # fmt: skip

    for n, row in enumerate(CASES):
        add(n, SINCE + n * timedelta(hours=1), row)
    # Just outside the window on both sides: `since` is inclusive, `until` exclusive. The
    # first closes inside the window, yet belongs to the cohort of the month it opened in.
    add(100, SINCE - timedelta(microseconds=1), ("expired_card", "usd", 50, "recovered", 1, 3))
    add(101, UNTIL, ("expired_card", "usd", 70, "recovered", None, 1))


@pytest.fixture(scope="module")
def pg_ledger(ledger: Ledger) -> Ledger:
    seed(ledger)
    return ledger


def report(ledger: Ledger, since: datetime | None, until: datetime | None) -> RecoveryReport:
    with Session(ledger.engine) as session:
        return compute_report(session, since=since, until=until)


def test_every_figure_of_the_window(pg_ledger: Ledger) -> None:
    assert report(pg_ledger, SINCE, UNTIL) == EXPECTED


def test_errors_and_messages_of_unknown_delivery_are_counted(ledger: Ledger) -> None:
    since = datetime(2031, 1, 1, tzinfo=UTC)
    for n, status in enumerate(("uncertain", "claimed", "sent")):
        invoice = f"in_report_unresolved_{n}"
        ledger.open_case(
            invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_report",
            amount_due=100, currency="eur", policy="default", opened_at=since + n * DAY,
        )  # fmt: skip
        notifications = NotificationStore(ledger.sessions)
        key = f"dunning-{invoice}:step:2"
        # A claim from long ago that nobody settled counts; a fresh one may still be sending.
        notifications.claim(1, invoice_id=invoice, dedupe_key=key, template="reminder")
        notifications.settle(key, status)
    ledger.record_outcome(
        "in_report_unresolved_0", "error", "eur", attempts=0, closed_at=since, reason="Stripe 404"
    )
    figures = report(ledger, since, since + 30 * DAY)
    assert (figures.errors, figures.unresolved_messages) == (1, 1)


def test_since_is_inclusive_and_until_exclusive(pg_ledger: Ledger) -> None:
    before = report(pg_ledger, SINCE - DAY, SINCE)
    after = report(pg_ledger, UNTIL, UNTIL + DAY)

    assert (before.opened, before.recovered, before.amount_recovered) == (1, 1, {"usd": 50})
    assert [(s.step, s.recovered) for s in before.by_step] == [(1, 1)]
    assert (after.opened, after.recovered, after.amount_recovered) == (1, 1, {"usd": 70})
    assert after.median_seconds_to_recovery == 86400.0


def test_an_empty_window_has_no_rates(pg_ledger: Ledger) -> None:
    empty = report(pg_ledger, datetime(1990, 1, 1, tzinfo=UTC), datetime(1990, 2, 1, tzinfo=UTC))

    assert empty.model_dump(exclude={"since", "until"}) == {
        "opened": 0, "closed": 0, "in_progress": 0, "recovered": 0, "recovery_rate": None,
        "recovery_rate_closed": None, "amount_recovered": {}, "canceled": 0,
        "canceled_by": {"subscription_canceled": 0, "marked_uncollectible": 0,
                        "left_past_due": 0},
        "stopped": 0, "already_paid": 0, "voided": 0, "errors": 0, "ended_outside": 0,
        "unresolved_messages": 0,
        "median_seconds_to_recovery": None,
        "by_decline_code": [], "by_step": [], "by_channel": [],
        "feedback": {"asked": 0, "answered": 0, "response_rate": None, "by_reason": [],
                     "recent_texts": []},
        "predunning": {"warned": 0, "card_updated": 0, "renewed": 0, "failed_anyway": 0,
                       "open": 0, "saved_rate": None},
    }  # fmt: skip


def test_sqlite_gives_the_same_report(tmp_path: Path) -> None:
    """The dev default: no percentile_cont there, the median is taken in Python."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    upgrade_to_head(url)
    ledger = Ledger(make_engine(url))
    seed(ledger)
    try:
        assert report(ledger, SINCE, UNTIL) == EXPECTED
    finally:
        ledger.engine.dispose()


# `dunning report`, in process.


@pytest.fixture
def cli(
    pg_ledger: Ledger, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


WINDOW = ["--since", "2001-03-01", "--until", "2001-04-01T00:00:00+00:00"]


def test_json_is_the_report(cli: CliRunner) -> None:
    result = cli.invoke(app, ["report", *WINDOW, "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == EXPECTED.model_dump(mode="json")


def test_tables_show_the_figures(cli: CliRunner) -> None:
    result = cli.invoke(app, ["report", *WINDOW], env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cases opened from 2001-03-01T00:00:00+00:00 to 2001-04-01T00:00:00+00:00" in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    for expected in [
        "Opened 13 100.0%",
        "In progress 2 15.4%",
        "Closed 11 84.6%",
        "Recovered 5 38.5%",
        "Canceled (final action) 3 23.1%",
        "subscription canceled 1 7.7%",
        "Stopped by support 1 7.7%",
        "Already paid 1 7.7%",
        "Voided 1 7.7%",
        "Recovery rate: 38.5% of opened, 45.5% of closed. Median time to recovery: 3.0 days",
        "Amount recovered: EUR 40.00, GBP 50.00, USD 44.99",
        "insufficient_funds 5 4 3 60.0%",
        "(none) 1 1 0 0.0%",
        "step 1 1 20.0%",
        "outside the schedule 2 40.0%",
    ]:
        assert expected in lines, f"{expected!r} not in:\n{out}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday' is not a date"),
        (["--until", "2001-13-01"], "--until '2001-13-01' is not a date"),
        (["--since", "2001-04-01", "--until", "2001-03-01"], "--since must be before --until"),
    ],
)
def test_bad_dates_are_usage_errors(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli.invoke(app, ["report", *args])

    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {message}"), result.output
    assert "Traceback" not in result.output


def test_unreachable_database_is_one_line(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql+psycopg2://dunning:hunter2@127.0.0.1:{free_port()}/dunning"
    monkeypatch.setenv("DATABASE_URL", url)

    result = cli.invoke(app, ["report"])

    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        "Error: reading the ledger at postgresql+psycopg2://dunning:***@"
    )
    assert "hunter2" not in result.output and len(result.output.strip().splitlines()) == 1


def test_unmigrated_or_missing_sqlite_ledger(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/missing.db")
    missing = cli.invoke(app, ["report"])
    (tmp_path / "empty.db").touch()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    empty = cli.invoke(app, ["report"])

    assert (missing.exit_code, empty.exit_code) == (1, 1)
    assert f"no ledger at {tmp_path}/missing.db" in missing.output
    assert not (tmp_path / "missing.db").exists()
    assert "no such table" in empty.output and "(run `dunning migrate`)" in empty.output
