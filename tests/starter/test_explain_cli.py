"""`dunning explain`: a dry run over the Stripe stand-in and the test ledger, in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.settings import Settings, get_settings
from models.store import Ledger
from policies.experiments import assign
from policies.loader import POLICY_DIR
from policies.rules import load_rules
from starter.cli import app
from tests.deadline import eventually_sync
from tests.standin_control import INSUFFICIENT, FailedInvoice, StripeControl

KEYS = {"rule", "policy", "experiment", "variant", "reasons", "schedule"}


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STRIPE_API_KEY", settings.stripe_api_key)
    monkeypatch.setenv("STRIPE_API_BASE", str(settings.stripe_api_base))
    monkeypatch.setenv("DUNNING_POLICY", str(POLICY_DIR / "default.yaml"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def rules_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


SEGMENTS = """
experiments:
  - {name: gentle, arms: [{name: control, weight: 1, control: true}, {name: soft, weight: 1}]}
rules:
  - {name: big, policy: demo, amount_at_least: {eur: 50000, usd: 50000}}
  - {name: enterprise, policy: demo, metadata: {segment: enterprise}}
  - {name: late-payers, policy: demo, experiment: gentle,
     prior_failures_at_least: {count: 2, within: 365d}}
  - {name: everyone, policy: default}
"""


def test_json_names_the_rule_the_reasons_and_the_dated_schedule(
    cli: CliRunner, stripe_control: StripeControl, tmp_path: Path
) -> None:
    failed = stripe_control.failed_invoice(INSUFFICIENT, amount=1200, currency="eur")
    before = datetime.now(UTC)
    result = cli.invoke(
        app, ["explain", failed.invoice, "--json", "--rules", rules_file(tmp_path, SEGMENTS)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == KEYS
    assert body["rule"] == {"index": 3, "name": "everyone"}
    assert (body["policy"], body["experiment"], body["variant"]) == ("default", None, None)
    assert [r["reasons"] for r in body["reasons"]] == [
        ["amount 1200 eur is below 50000"],
        ["metadata segment is not set, not 'enterprise'"],
        ["0 prior failure(s) within 365d, fewer than 2"],
    ]
    # No case yet: the default policy's schedule counted from now (day 1, 3, 7, 12, 17, 21).
    steps = body["schedule"]
    offsets = [datetime.fromisoformat(s["at"]) - before for s in steps]
    assert [round(o / timedelta(days=1)) for o in offsets] == [1, 3, 7, 12, 17, 21]
    assert [s["charge"] for s in steps[:-1]] == [True, True, True, True, False]
    assert steps[-1]["action"] == "cancel_subscription"


def test_metadata_and_prior_failures_from_stripe_and_the_ledger(
    cli: CliRunner, stripe_control: StripeControl, ledger: Ledger, tmp_path: Path
) -> None:
    rules = rules_file(tmp_path, SEGMENTS)
    vip = stripe_control.failed_invoice(INSUFFICIENT, metadata={"segment": "enterprise"})
    result = cli.invoke(app, ["explain", vip.invoice, "--json", "--rules", rules])
    assert json.loads(result.stdout)["rule"] == {"index": 1, "name": "enterprise"}

    late = stripe_control.failed_invoice(INSUFFICIENT)
    for days in (40, 200, 400):  # the last one is outside the 365-day window
        ledger.open_case(
            invoice_id=f"in_prior_{late.customer}_{days}",
            workflow_id=f"dunning-in_prior_{late.customer}_{days}",
            customer_id=late.customer,
            amount_due=1200,
            currency="eur",
            policy="default",
            opened_at=datetime.now(UTC) - timedelta(days=days),
        )
    result = cli.invoke(app, ["explain", late.invoice, "--rules", rules])
    assert result.exit_code == 0, result.output
    assert "Rule: rules[2] (late-payers)" in result.stdout
    assert "Experiment: gentle" in result.stdout
    assert "not rules[0] (big): amount 1200 eur is below 50000" in result.stdout


def test_a_missing_invoice_exits_3(cli: CliRunner) -> None:
    result = cli.invoke(app, ["explain", "in_does_not_exist", "--json"])
    assert result.exit_code == 3
    assert "Error: Stripe has no invoice in_does_not_exist" in result.stderr


def test_a_bad_rules_file_or_an_undecidable_case_exits_1(
    cli: CliRunner, stripe_control: StripeControl, tmp_path: Path
) -> None:
    bad = rules_file(tmp_path, "rules:\n- {policy: default, currency: eur}\n")
    result = cli.invoke(app, ["explain", "in_whatever", "--rules", bad])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: bad rules file:")
    assert "the last rule must be the default" in result.stderr

    usd = stripe_control.failed_invoice(INSUFFICIENT, currency="usd")
    eur_only = rules_file(
        tmp_path,
        "rules:\n- {name: big, policy: demo, amount_below: {eur: 5}}\n- {policy: default}\n",
    )
    result = cli.invoke(app, ["explain", usd.invoice, "--rules", eur_only])
    assert result.exit_code == 1
    assert "rules[0] (big): amount_below has no amount for usd" in result.stderr


def test_unreachable_stripe_exits_1(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from standins.server import free_port

    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")
    result = cli.invoke(app, ["explain", "in_anything"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot read in_anything from Stripe at")


def test_help_has_metavars_not_types() -> None:
    result = CliRunner().invoke(app, ["explain", "--help"], terminal_width=120)
    assert result.exit_code == 0
    assert "--rules FILE" in result.stdout
    assert "<bool>" not in result.stdout and "<str>" not in result.stdout


EXPERIMENT = """
experiments:
  - name: copy
    arms:
      - {name: control, weight: 1, control: true}
      - {name: fast, weight: 1, policy: demo, variant: b}
rules:
  - {name: everyone, policy: default, experiment: copy}
"""


def test_each_customer_arm_its_policy_and_schedule(
    cli: CliRunner, stripe_control: StripeControl, tmp_path: Path
) -> None:
    rules = rules_file(tmp_path, EXPERIMENT)
    experiment = load_rules(rules).experiments["copy"]
    cases: dict[str, FailedInvoice] = {}

    def both_arms() -> dict[str, FailedInvoice]:
        failed = stripe_control.failed_invoice(INSUFFICIENT)
        cases.setdefault(assign(experiment, failed.customer).arm.name, failed)
        return cases

    eventually_sync(both_arms, lambda found: len(found) == 2, interval=0, what="both arms")
    for arm, policy, templates in (
        ("fast", "demo", "templates b"),
        ("control", "default", "base templates"),
    ):
        failed = cases[arm]
        result = cli.invoke(app, ["explain", failed.invoice, "--json", "--rules", rules])
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert (body["policy"], body["experiment"], body["variant"]) == (policy, "copy", arm)
        # The arm's policy dates the schedule: demo's steps are seconds apart, default's days.
        first, last = (datetime.fromisoformat(body["schedule"][i]["at"]) for i in (0, -1))
        assert (last - first < timedelta(hours=1)) == (policy == "demo")

        text = cli.invoke(app, ["explain", failed.invoice, "--rules", rules]).stdout
        assert f"Policy: {policy}" in text
        assert "Experiment: copy" in text
        assert f"Arm: {arm} ({templates}); experiment copy: arm {arm}" in text
