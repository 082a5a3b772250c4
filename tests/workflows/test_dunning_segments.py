"""Segment rules at opening: the first matching rule picks the policy, once, and the case
keeps it; the rule and why are in history, the ledger and the search attributes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from models.ledger import Case
from models.store import Ledger
from policies.loader import POLICY_DIR
from starter.cases import start_case
from tests.workflows.helpers import INSUFFICIENT, advance_until, ledger_rows
from workflows import search_attributes as sa

RULES = """
rules:
  - name: enterprise
    policy: demo
    metadata: {segment: enterprise}
  - name: everyone
    policy: default
"""


def rules_file(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return str(path)


async def test_the_first_matching_rule_picks_the_policy_and_is_recorded(
    time_env: WorkflowEnvironment, run_worker: Any, stripe_control: Any, ledger: Ledger,
    tmp_path: Path,
) -> None:  # fmt: skip
    enterprise = stripe_control.failed_invoice(INSUFFICIENT, metadata={"segment": "enterprise"})
    other = stripe_control.failed_invoice(INSUFFICIENT, metadata={"segment": "smb"})
    rules = rules_file(tmp_path)
    async with run_worker(
        time_env.client, dunning_rules=rules, dunning_policy=str(POLICY_DIR / "default.yaml")
    ) as task_queue:
        states: dict[str, Any] = {}
        for case in (enterprise, other):
            handle = await start_case(time_env.client, case.dunning_input(), task_queue)
            states[case.invoice] = await advance_until(
                time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0)
            )
            described = await handle.describe()
            attrs = described.typed_search_attributes
            states[case.invoice + ":sa"] = (
                attrs.get(sa.DUNNING_SEGMENT),
                attrs.get(sa.DUNNING_POLICY),
            )
            await handle.terminate("test done")

    assert states[enterprise.invoice].policy == "demo"
    assert states[other.invoice].policy == "default"
    assert states[enterprise.invoice + ":sa"] == ("enterprise", "demo")
    assert states[other.invoice + ":sa"] == ("everyone", "default")
    (opened,) = ledger_rows(ledger, Case, other.invoice)
    assert (opened.segment, opened.policy) == ("everyone", "default")
    assert opened.segment_reason is not None
    assert "enterprise: metadata segment" in opened.segment_reason


async def test_a_policy_named_by_the_start_request_wins_over_the_rules(
    time_env: WorkflowEnvironment, run_worker: Any, stripe_control: Any, tmp_path: Path
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, metadata={"segment": "enterprise"})
    async with run_worker(time_env.client, dunning_rules=rules_file(tmp_path)) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(policy="default"), task_queue)
        state = await advance_until(
            time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0)
        )
        await handle.terminate("test done")
    assert state.policy == "default"
