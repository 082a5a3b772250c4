"""`--fit-from-ledger` and `--backtest` on a seeded PostgreSQL ledger with known answers.

Each test writes cases opened in its own year (2002, 2003), a window no other test uses, so the
session's shared database may hold other tests' cases too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from models.ledger import Notification
from models.settings import get_settings
from models.store import Ledger
from policies.loader import POLICY_DIR, load_policy
from policies.simulation_model import load_model
from starter.cli import app
from starter.simulate_fit import fit_model

FIT_SINCE, FIT_UNTIL = datetime(2002, 1, 1, tzinfo=UTC), datetime(2003, 1, 1, tzinfo=UTC)
BACK_SINCE, BACK_UNTIL = datetime(2003, 1, 1, tzinfo=UTC), datetime(2004, 1, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


class Seeder:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.prefix = ledger, f"in_sim_{uuid.uuid4().hex[:8]}"

    def case(self, n: int, opened: datetime, code: str, amount: int) -> str:
        invoice = f"{self.prefix}_{n}"
        self.ledger.open_case(
            invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_sim",
            amount_due=amount, currency="usd", policy="default", first_decline_code=code,
            opened_at=opened,
        )  # fmt: skip
        return invoice

    def attempt(self, invoice: str, no: int, trigger: str, outcome: str, at: datetime) -> None:
        self.ledger.record_attempt(
            invoice_id=invoice, attempt_no=no, idempotency_key=f"dunning-{invoice}:charge:{no}",
            trigger=trigger, outcome=outcome, attempted_at=at,
        )  # fmt: skip

    def message(self, invoice: str, key: str, level: str, at: datetime) -> None:
        with self.ledger.sessions.begin() as session:
            session.add(
                Notification(
                    invoice_id=invoice, dedupe_key=f"dunning-{invoice}:{key}", template="x",
                    level=level, status="sent", created_at=at, sent_at=at,
                )
            )  # fmt: skip


@pytest.fixture(scope="module")
def fit_ledger(ledger: Ledger) -> Ledger:
    """250 cases: 150 insufficient_funds at USD 10 (first retry succeeds for 30 of them, and 20
    give a new card, 15 of which work), 100 expired_card at USD 50 (each asked at once; 40 give
    a new card an hour later, 30 of which work)."""
    seed = Seeder(ledger)
    for n in range(150):
        opened = FIT_SINCE + n * HOUR
        invoice = seed.case(n, opened, "insufficient_funds", 1000)
        seed.attempt(invoice, 1, "schedule", "succeeded" if n < 30 else "declined", opened + DAY)
        if n >= 130:
            outcome = "succeeded" if n < 145 else "declined"
            seed.attempt(invoice, 2, "payment_method_updated", outcome, opened + 2 * DAY)
    for n in range(150, 250):
        opened = FIT_SINCE + n * HOUR
        invoice = seed.case(n, opened, "expired_card", 5000)
        seed.message(invoice, "ask:new_payment_method:0", "friendly", opened + timedelta(minutes=1))
        if n < 190:
            outcome = "succeeded" if n < 180 else "declined"
            seed.attempt(invoice, 1, "payment_method_updated", outcome, opened + HOUR)
    return ledger


def test_fit_takes_the_rates_with_enough_rows_and_keeps_the_rest(fit_ledger: Ledger) -> None:
    base = load_model()
    with Session(fit_ledger.engine) as session:
        fit = fit_model(session, base, FIT_SINCE, FIT_UNTIL)
    model = fit.model

    shares = {d.code: d.share for d in model.population.declines}
    assert shares == pytest.approx({"insufficient_funds": 0.6, "expired_card": 0.4})
    assert {a.amount: a.share for a in model.population.amounts} == pytest.approx(
        {1000: 0.6, 5000: 0.4}
    )
    assert model.retry.success["insufficient_funds"] == pytest.approx(0.2)
    assert model.retry.success["default"] == pytest.approx(0.2)  # pooled over the codes retried
    assert model.customer.new_card_success == pytest.approx(45 / 60)
    assert model.customer.act_on_message["ask"] == pytest.approx(0.4)
    assert model.customer.pay_share == 0.0
    # Not in the ledger, or too few rows: the shipped defaults stay.
    assert model.retry.decay == base.retry.decay
    assert model.customer.act_on_message["urgent"] == base.customer.act_on_message["urgent"]
    assert any(note.startswith("decline mix (250 cases") for note in fit.fitted)
    assert any("reply_rate" in note for note in fit.defaults)


def test_too_little_data_keeps_every_default(fit_ledger: Ledger) -> None:
    base = load_model()
    with Session(fit_ledger.engine) as session:
        fit = fit_model(session, base, FIT_SINCE, FIT_SINCE + 10 * HOUR)

    assert fit.model.population == base.population
    assert fit.model.retry == base.retry
    assert fit.model.customer == base.customer
    assert fit.fitted == []
    assert "decline mix (10 cases, need 200)" in fit.defaults


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_the_cli_says_what_it_fitted(fit_ledger: Ledger, cli: CliRunner) -> None:
    window = ["--since", "2002-01-01", "--until", "2003-01-01"]
    result = cli.invoke(app, ["simulate", "--fit-from-ledger", *window, "--cases", "200"])
    as_json = cli.invoke(
        app, ["simulate", "--fit-from-ledger", *window, "--cases", "200", "--json"]
    )

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Fitted from the ledger: decline mix (250 cases, 2 codes)" in out
    assert "Shipped defaults kept for:" in out
    assert json.loads(as_json.stdout)["model"] == "default+ledger"


@pytest.fixture(scope="module")
def back_ledger(ledger: Ledger) -> Ledger:
    """A soft decline that ran to the final action at day 21, and an expired card replaced
    two days in (the new card worked)."""
    seed = Seeder(ledger)
    opened = datetime(2003, 1, 6, 10, tzinfo=UTC)
    soft = seed.case(1, opened, "insufficient_funds", 1000)
    for no, day in enumerate((1, 3, 7, 12), start=1):
        seed.attempt(soft, no, "schedule", "declined", opened + day * DAY)
    for step, day in ((2, 3), (3, 7), (4, 12), (5, 17)):
        seed.message(soft, f"step:{step}", "reminder", opened + day * DAY)
    ledger.record_outcome(soft, "subscription_canceled", "usd", 4, closed_at=opened + 21 * DAY)
    hard = seed.case(2, opened + 2 * HOUR, "expired_card", 5000)
    seed.message(hard, "ask:new_payment_method:0", "friendly", opened + 2 * HOUR)
    seed.attempt(hard, 1, "payment_method_updated", "succeeded", opened + 2 * HOUR + 2 * DAY)
    ledger.record_outcome(hard, "recovered", "usd", 1, 5000, closed_at=opened + 2 * HOUR + 2 * DAY)
    return ledger


def backtest(cli: CliRunner, policy: str) -> dict:  # type: ignore[type-arg]
    window = ["--since", "2003-01-01", "--until", "2004-01-01"]
    result = cli.invoke(app, ["simulate", "--backtest", "--policy", policy, *window, "--json"])
    assert result.exit_code == 0, result.output
    [only] = json.loads(result.stdout)["backtests"]
    return only  # type: ignore[no-any-return]


def test_backtest_replays_real_cases_through_a_schedule(
    back_ledger: Ledger, cli: CliRunner
) -> None:
    same = backtest(cli, "default")

    assert (same["cases"], same["charges"], same["messages"], same["final_actions"]) == (2, 5, 5, 1)
    assert same["actual"] == {"charges": 5, "messages": 5}
    assert same["by_step"] == [
        {"step": "ask", "charges": 0, "messages": 1},
        {"step": "new card", "charges": 1, "messages": 0},
        {"step": "step 1", "charges": 1, "messages": 0},
        {"step": "step 2", "charges": 1, "messages": 1},
        {"step": "step 3", "charges": 1, "messages": 1},
        {"step": "step 4", "charges": 1, "messages": 1},
        {"step": "step 5", "charges": 0, "messages": 1},
    ]
    assert [(d["day"], d["charges"], d["messages"]) for d in same["by_day"]] == [
        (0, 0, 1), (1, 1, 0), (2, 1, 0), (3, 1, 1), (7, 1, 1), (12, 1, 1), (17, 0, 1),
    ]  # fmt: skip
    assert same["by_date"][0] == {"date": "2003-01-06", "charges": 0, "messages": 1}


def test_backtest_through_an_anchor(back_ledger: Ledger, cli: CliRunner) -> None:
    stripe = backtest(cli, "anchors/stripe_smart_retries")
    polar = backtest(cli, "anchors/polar")
    steps = load_policy(POLICY_DIR / "anchors/stripe_smart_retries.yaml").steps

    # Stripe: 8 retries for the soft decline before day 21, the new card for the other one.
    assert (stripe["charges"], stripe["final_actions"]) == (len(steps) + 1, 1)
    # Polar: the email at the failure for both, retries at days 2, 7, 14 and 21 for the soft
    # one; its revocation (21 days and an hour) comes after the real case had ended.
    assert (polar["charges"], polar["messages"], polar["final_actions"]) == (5, 3, 0)
