"""A case opened under an experiment: its arm is in history (the opening result), the ledger
and the DunningVariant search attribute, beside DunningSegment and DunningPolicy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from models.ledger import Case
from models.store import Ledger
from policies.experiments import assign
from policies.loader import POLICY_DIR
from policies.rules import load_rules
from starter.cases import start_case
from tests.deadline import eventually_sync
from tests.workflows.helpers import INSUFFICIENT, advance_until, ledger_rows
from workflows import search_attributes as sa

RULES = """
experiments:
  - name: schedule
    arms:
      - {name: control, weight: 1, control: true}
      - {name: fast, weight: 1, policy: demo}
rules:
  - {name: enterprise, policy: default, metadata: {segment: enterprise}}
  - {name: everyone, policy: default, experiment: schedule}
"""


async def test_the_arm_is_in_the_search_attributes_history_and_ledger(
    time_env: WorkflowEnvironment, run_worker: Any, stripe_control: Any, ledger: Ledger,
    tmp_path: Path,
) -> None:  # fmt: skip
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    experiment = load_rules(path).experiments["schedule"]
    # New customers until both arms have one (each is a fair coin: a handful is plenty).
    cases: dict[str, Any] = {}

    def both_arms() -> dict[str, Any]:
        case = stripe_control.failed_invoice(INSUFFICIENT)
        cases.setdefault(assign(experiment, case.customer).arm.name, case)
        return cases

    eventually_sync(both_arms, lambda found: len(found) == 2, interval=0, what="both arms")
    vip = stripe_control.failed_invoice(INSUFFICIENT, metadata={"segment": "enterprise"})
    seen: dict[str, Any] = {}
    async with run_worker(
        time_env.client, dunning_rules=str(path), dunning_policy=str(POLICY_DIR / "default.yaml")
    ) as task_queue:
        for case in (*cases.values(), vip):
            handle = await start_case(time_env.client, case.dunning_input(), task_queue)
            state = await advance_until(
                time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0)
            )
            attrs = (await handle.describe()).typed_search_attributes
            seen[case.invoice] = (
                state.policy,
                attrs.get(sa.DUNNING_SEGMENT),
                attrs.get(sa.DUNNING_POLICY),
                attrs.get(sa.DUNNING_VARIANT),
            )
            await handle.terminate("test done")

    fast, control = cases["fast"], cases["control"]
    assert seen[fast.invoice] == ("demo", "everyone", "demo", "fast")
    assert seen[control.invoice] == ("default", "everyone", "default", "control")
    # A rule without an experiment leaves DunningVariant unset.
    assert seen[vip.invoice] == ("default", "enterprise", "default", None)
    for case, arm in ((fast, "fast"), (control, "control")):
        (row,) = ledger_rows(ledger, Case, case.invoice)
        assert (row.segment, row.experiment, row.variant) == ("everyone", "schedule", arm)
        assert row.segment_reason is not None
        assert f"experiment schedule: arm {arm}" in row.segment_reason
    (row,) = ledger_rows(ledger, Case, vip.invoice)
    assert (row.experiment, row.variant) == (None, None)
