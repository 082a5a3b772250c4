"""The opening's segment under an experiment: the customer's arm decides the policy and the
message variant, and the opening result and the ledger record the arm."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.segments import segment_for
from activities.stripe_billing import StripeActivities
from models.activities import InvoiceContextInput
from models.ledger import Case
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from policies.experiments import assign
from policies.loader import POLICY_DIR, load_policy
from policies.rules import RuleSet, load_rules
from tests.standin_control import INSUFFICIENT, StripeControl
from tests.workflows.helpers import ledger_rows

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DEFAULT = load_policy(POLICY_DIR / "default.yaml")

RULES = """
experiments:
  - name: gentle
    status: {status}
    arms:
      - {{name: control, weight: 1, control: true}}
      - {{name: soft, weight: 1, policy: demo, variant: b}}
rules:
  - {{name: enterprise, policy: default, metadata: {{segment: enterprise}}}}
  - {{name: everyone, policy: default, experiment: gentle}}
"""


def rules(tmp_path: Path, status: str = "running") -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(status=status), encoding="utf-8")
    return load_rules(path)


def customer_in(ruleset: RuleSet, arm: str) -> str:
    """A customer id the running experiment puts in `arm` (the first of cus_0, cus_1, ...)."""
    experiment = ruleset.experiments["gentle"]
    return next(f"cus_{n}" for n in range(1000) if assign(experiment, f"cus_{n}").arm.name == arm)


def segment(ruleset: RuleSet, ledger: Ledger, customer: str, invoice: str, **meta: str) -> Any:
    objects = ({"amount_due": 1200, "currency": "eur"}, {"id": customer, "metadata": meta}, None)
    return segment_for(
        ruleset, None, DEFAULT, ledger, objects, ("insufficient_funds", None),
        (invoice, customer, NOW),
    )  # fmt: skip


def test_the_arm_gives_its_policy_and_variant_and_is_recorded(
    tmp_path: Path, ledger: Ledger
) -> None:
    ruleset = rules(tmp_path)
    soft = segment(ruleset, ledger, customer_in(ruleset, "soft"), "in_seg_1")
    assert (soft.policy, soft.experiment, soft.variant, soft.message_variant) == (
        "demo",
        "gentle",
        "soft",
        "b",
    )
    assert soft.reason.startswith("matched everyone; experiment gentle: arm soft (customer hash")
    assert "earlier rules missed: enterprise: metadata segment is not set" in soft.reason
    assert soft.recorded() == {
        "segment": "everyone",
        "segment_reason": soft.reason,
        "experiment": "gentle",
        "variant": "soft",
    }
    control = segment(ruleset, ledger, customer_in(ruleset, "control"), "in_seg_2")
    assert (control.policy, control.variant, control.message_variant) == (
        "default",
        "control",
        None,
    )


def test_the_same_customer_lands_in_the_same_arm_for_every_invoice(
    tmp_path: Path, ledger: Ledger
) -> None:
    ruleset = rules(tmp_path)
    arms = {
        n: {segment(ruleset, ledger, f"cus_{n}", f"in_{n}_{k}").variant for k in range(3)}
        for n in range(20)
    }
    assert all(len(found) == 1 for found in arms.values())
    assert {arm for found in arms.values() for arm in found} == {"control", "soft"}


def test_a_stopped_experiment_gives_the_control_and_records_no_experiment(
    tmp_path: Path, ledger: Ledger
) -> None:
    soft_customer = customer_in(rules(tmp_path), "soft")
    stopped = segment(rules(tmp_path, "stopped"), ledger, soft_customer, "in_seg_3")
    # The case runs the control arm, but it was not drawn at random: not one of the
    # experiment's samples, so the ledger's experiment column stays empty.
    assert (stopped.policy, stopped.experiment, stopped.variant) == ("default", None, "control")
    assert "experiment gentle is stopped" in stopped.reason
    winner = segment(rules(tmp_path, "{winner: soft}"), ledger, "cus_any", "in_seg_4")
    assert (winner.policy, winner.experiment, winner.variant) == ("demo", None, "soft")


def test_a_rule_without_experiment_has_no_arm(tmp_path: Path, ledger: Ledger) -> None:
    found = segment(rules(tmp_path), ledger, "cus_vip", "in_seg_5", segment="enterprise")
    assert (found.name, found.experiment, found.variant, found.message_variant) == (
        "enterprise",
        None,
        None,
        None,
    )
    assert found.recorded()["variant"] is None


def test_the_opening_result_and_the_ledger_carry_the_arm(
    tmp_path: Path, settings: Settings, ledger: Ledger, stripe_control: StripeControl
) -> None:
    ruleset = rules(tmp_path)
    activities = StripeActivities(
        make_stripe_client(settings), ledger, str(POLICY_DIR / "default.yaml"), rules=ruleset
    )
    case = stripe_control.failed_invoice(INSUFFICIENT)
    opening = InvoiceContextInput(
        invoice_id=case.invoice,
        customer_id=case.customer,
        amount_due=1200,
        currency="eur",
        workflow_id=f"dunning-{case.invoice}",
        opened_at=datetime.now(UTC),
    )
    result = ActivityEnvironment().run(activities.get_invoice_context, opening)
    arm = assign(ruleset.experiments["gentle"], case.customer).arm
    assert (result.experiment, result.variant) == ("gentle", arm.name)
    assert result.policy.name == (arm.policy or "default")
    (row,) = ledger_rows(ledger, Case, case.invoice)
    assert (row.experiment, row.variant, row.policy) == ("gentle", arm.name, result.policy.name)
