"""`report --by` over a seeded ledger with known answers: two arms of one experiment.

Each test module run uses its own experiment name and filters on it, so the session's shared
PostgreSQL database may hold other tests' cases (and their rollup rows) too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from models.ledger import Notification
from models.migrate import upgrade_to_head
from models.notification_store import NotificationStore
from models.store import Ledger, make_engine
from starter.support import report_facts
from starter.support.report_by import Filters, GroupRow, GroupTable, compute_by
from starter.support.report_experiment import NoControl, compute_grouped
from starter.support.report_stats import sample_size

OPENED = datetime(2005, 5, 1, tzinfo=UTC)  # a year no other test seeds
DAY = timedelta(days=1)
# name: arm, segment, decline code, currency, amount, outcome (None: open), recovered step,
# days to close, charges' steps, messages (channel, step, day sent).
CASES: dict[str, tuple] = {  # type: ignore[type-arg]
    "c1": ("control", "smb", "insufficient_funds", "usd", 1000, "recovered", 1, 2, [1],
           [("email", 1, 1)]),
    "c2": ("control", "smb", "insufficient_funds", "usd", 2000, "recovered", 2, 6, [1, 2],
           [("email", 1, 1), ("sms", 2, 5)]),
    "c3": ("control", "ent", "expired_card", "eur", 5000, "subscription_canceled", None, 28, [1],
           [("email", 1, 1), ("email", 2, 5), ("email", 3, 10)]),
    "c4": ("control", "ent", "generic_decline", "usd", 3000, "left_past_due", None, 28,
           [1, 2, 3], [("sms", 1, 1)]),
    "c5": ("control", "smb", "insufficient_funds", "usd", 500, None, None, 0, [1],
           [("email", 1, 1)]),
    "b1": ("B", "smb", "insufficient_funds", "usd", 1500, "recovered", None, 1, [], []),
    "b2": ("B", "smb", "do_not_honor", "eur", 4000, "recovered", 1, 3, [1], [("email", 1, 2)]),
    "b3": ("B", "ent", "insufficient_funds", "usd", 2500, "recovered", 3, 12, [1, 2, 3],
           [("email", 1, 1), ("sms", 2, 5), ("sms", 3, 11)]),
    # The email on day 30 came after the final action: it counts for nothing.
    "b4": ("B", "ent", "expired_card", "usd", 1000, "marked_uncollectible", None, 28, [],
           [("email", 1, 1), ("email", 4, 30)]),
    "b5": ("B", "ent", "generic_decline", "gbp", 700, None, None, 0, [1, 2], [("sms", 1, 1)]),
}  # fmt: skip


def seed(ledger: Ledger, experiment: str) -> None:
    store = NotificationStore(ledger.sessions)
    for name, row in CASES.items():
        arm, segment, code, currency, amount, outcome, step, days, charges, messages = row
        invoice = f"in_{experiment}_{name}"
        ledger.open_case(
            invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id=f"cus_{name}",
            amount_due=amount, currency=currency, policy=f"policy-{arm}", segment=segment,
            experiment=experiment, variant=arm, first_decline_code=code, opened_at=OPENED,
        )  # fmt: skip
        for n, charge_step in enumerate(charges, start=1):
            ledger.record_attempt(
                invoice_id=invoice, attempt_no=n, idempotency_key=f"{invoice}:{n}",
                trigger="schedule", step=charge_step, outcome="declined", amount=0,
                attempted_at=OPENED + n * DAY,
            )  # fmt: skip
        for channel, message_step, day in messages:
            key = f"dunning-{invoice}:step:{message_step}:{channel}"
            store.claim(1, invoice_id=invoice, dedupe_key=key, template="t", channel=channel)
            store.settle(key, "sent")
            at = OPENED + day * DAY
            with ledger.sessions.begin() as session:
                values = {"step": message_step, "sent_at": at, "created_at": at}
                session.execute(
                    update(Notification).where(Notification.dedupe_key == key).values(values)
                )
        if outcome is not None:
            ledger.record_outcome(
                invoice, outcome, currency, attempts=len(charges),
                amount_recovered=amount if outcome == "recovered" else 0, recovered_step=step,
                closed_at=OPENED + days * DAY,
            )  # fmt: skip


@pytest.fixture(scope="module")
def experiment(ledger: Ledger) -> str:
    name = f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, name)
    return name


def tables(ledger: Ledger, experiment: str, *by: str) -> dict[str, GroupTable]:
    with Session(ledger.engine) as session:
        found = compute_by(session, list(by), Filters(experiment=experiment))  # type: ignore[arg-type]
    return {table.by: table for table in found}


def rows(table: GroupTable) -> dict[object, GroupRow]:
    return {row.key: row for row in table.rows}


def test_by_variant_every_figure(ledger: Ledger, experiment: str) -> None:
    arms = rows(tables(ledger, experiment, "variant")["variant"])

    control, b = arms["control"], arms["B"]
    assert (control.cases, control.finished, control.open, control.recovered) == (5, 4, 1, 2)
    assert (b.cases, b.finished, b.open, b.recovered) == (5, 4, 1, 3)
    assert (control.recovery_rate, b.recovery_rate) == (0.5, 0.75)
    assert control.revenue == {"usd": 3000}
    assert b.revenue == {"eur": 4000, "usd": 4000}  # never added across currencies
    # Recovered after 2 and 6 days; after 1, 3 and 12 (percentile_cont's interpolation).
    assert control.median_seconds_to_recover == pytest.approx(4 * 86400)
    assert control.p90_seconds_to_recover == pytest.approx(5.6 * 86400)
    assert b.median_seconds_to_recover == pytest.approx(3 * 86400)
    assert b.p90_seconds_to_recover == pytest.approx(10.2 * 86400)
    assert (control.messages_per_case, b.messages_per_case) == (7 / 4, 5 / 4)
    assert (control.charges_per_case, b.charges_per_case) == (7 / 4, 1.0)
    assert (control.churned, control.churn_rate, b.churned, b.churn_rate) == (2, 0.5, 1, 0.25)
    assert control.recovery_interval is not None
    assert control.recovery_interval.low < 0.5 < control.recovery_interval.high


def test_by_segment_and_decline_code(ledger: Ledger, experiment: str) -> None:
    found = tables(ledger, experiment, "segment", "decline_code")
    segments = rows(found["segment"])
    codes = rows(found["decline_code"])

    assert [(r.key, r.finished, r.open, r.recovered) for r in found["segment"].rows] == [
        ("ent", 4, 1, 1),
        ("smb", 4, 1, 4),
    ]
    assert segments["smb"].revenue == {"eur": 4000, "usd": 4500}
    assert (codes["insufficient_funds"].cases, codes["insufficient_funds"].recovered) == (5, 4)
    assert (codes["generic_decline"].finished, codes["generic_decline"].open) == (1, 1)


def test_by_channel_counts_cases_messaged_before_they_closed(
    ledger: Ledger, experiment: str
) -> None:
    channels = rows(tables(ledger, experiment, "channel")["channel"])

    summary = {k: (r.finished, r.recovered, r.open) for k, r in channels.items()}
    assert summary == {"email": (6, 4, 1), "sms": (3, 2, 1), None: (1, 1, 0)}


def test_by_step_rates_are_per_case_that_reached_the_step(ledger: Ledger, experiment: str) -> None:
    steps = tables(ledger, experiment, "step")["step"]

    assert [(r.key, r.finished, r.recovered, r.open) for r in steps.rows] == [
        (1, 7, 2, 2),
        (2, 4, 1, 1),
        (3, 3, 1, 0),
        (None, 8, 1, 2),  # every case; recovered outside the schedule
    ]


def test_filters_and_a_case_that_finishes_later(ledger: Ledger, experiment: str) -> None:
    with Session(ledger.engine) as session:
        only_b = compute_by(session, ["segment"], Filters(experiment=experiment, variant="B"))
    assert [(r.key, r.cases) for r in only_b[0].rows] == [("ent", 3), ("smb", 2)]

    before = rows(tables(ledger, experiment, "variant")["variant"])["B"]
    invoice = f"in_{experiment}_b5"
    ledger.record_outcome(invoice, "recovered", "gbp", 2, 700, 2, closed_at=OPENED + 4 * DAY)
    after = rows(tables(ledger, experiment, "variant")["variant"])["B"]

    assert (before.finished, before.open, before.recovered) == (4, 1, 3)
    assert (after.finished, after.open, after.recovered) == (5, 0, 4)
    assert after.revenue == {"eur": 4000, "gbp": 700, "usd": 4000}


def test_experiment_comparison_waits_for_the_sample_size(ledger: Ledger) -> None:
    experiment = f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, experiment)
    with Session(ledger.engine) as session:
        report = compute_grouped(session, [], Filters(experiment=experiment), min_effect=0.3)
        with pytest.raises(NoControl, match="name the control arm with --control ARM"):
            compute_grouped(session, [], Filters(experiment=experiment), control="A")

    assert report.comparison is not None
    (arm,) = report.comparison.arms
    needed = sample_size(0.5, 0.3)
    assert (arm.arm, arm.needed_per_arm, arm.still_needed) == ("B", needed, needed - 4)
    assert arm.verdict == "not_enough_data" and arm.verdict_words == "not enough data"
    assert arm.rate is not None and arm.rate.difference == pytest.approx(0.25)
    assert set(arm.revenue_per_case) == {"eur", "usd"}
    # usd: control 1000, 2000, 0 (3 usd cases finished) against B 1500, 2500, 0.
    assert arm.revenue_per_case["usd"].difference == pytest.approx(4000 / 3 - 3000 / 3)


EVERYTHING = ("segment", "policy", "variant", "decline_code", "channel", "step")


def test_the_rollup_built_in_one_pass_is_the_same(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of outcomes (the first report after the migration) is joined in one pass."""
    one_by_one, in_one_pass = f"exp_{uuid.uuid4().hex[:8]}", f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, one_by_one)
    expected = tables(ledger, one_by_one, *EVERYTHING)
    monkeypatch.setattr(report_facts, "FEW", 0)
    seed(ledger, in_one_pass)

    assert tables(ledger, in_one_pass, *EVERYTHING) == expected


def test_sqlite_gives_the_same_tables(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev default: percentiles are taken in Python there."""
    fresh = f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, fresh)
    expected = tables(ledger, fresh, *EVERYTHING)
    url = f"sqlite:///{tmp_path}/ledger.db"
    upgrade_to_head(url)
    lite = Ledger(make_engine(url))
    other = f"exp_{uuid.uuid4().hex[:8]}"
    seed(lite, other)
    try:
        assert tables(lite, other, *EVERYTHING) == expected
        monkeypatch.setattr(report_facts, "FEW", 0)
        with lite.sessions.begin() as session:
            session.execute(delete(report_facts.facts))
            session.execute(delete(report_facts.fact_channels))
        assert tables(lite, other, *EVERYTHING) == expected
    finally:
        lite.engine.dispose()
