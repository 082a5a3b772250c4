"""`dunning list --variant ARM` on a real dev server: the cases of one experiment arm, found
through the DunningVariant search attribute, beside --segment and --policy."""

from __future__ import annotations

import asyncio
import json
import operator
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from models.dunning import DunningState
from models.settings import Settings, get_settings
from policies.experiments import assign
from policies.loader import POLICY_DIR
from policies.rules import load_rules
from starter.cases import start_case
from starter.cli import app
from tests.deadline import eventually, eventually_sync
from tests.standin_control import INSUFFICIENT, FailedInvoice, StripeControl
from workflows.dunning import DunningWorkflow

RULES = """
experiments:
  - name: copy
    arms:
      - {name: control, weight: 1, control: true}
      - {name: b, weight: 1}
rules:
  - {name: everyone, policy: default, experiment: copy}
"""


@pytest.fixture
def cli(
    dev_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
    monkeypatch.chdir(tmp_path)  # no developer .env
    yield CliRunner()
    get_settings.cache_clear()


async def dunning(cli: CliRunner, *args: str) -> Result:
    return await asyncio.to_thread(lambda: cli.invoke(app, list(args)))


async def status(handle: WorkflowHandle[Any, Any]) -> DunningState:
    return await handle.query(DunningWorkflow.status)


async def test_list_filters_by_experiment_arm(
    cli: CliRunner, dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings,
    tmp_path: Path,
) -> None:  # fmt: skip
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    experiment = load_rules(path).experiments["copy"]
    control = StripeControl(settings)
    cases: dict[str, FailedInvoice] = {}

    def both_arms() -> dict[str, FailedInvoice]:
        failed = control.failed_invoice(INSUFFICIENT)
        cases.setdefault(assign(experiment, failed.customer).arm.name, failed)
        return cases

    eventually_sync(both_arms, lambda found: len(found) == 2, interval=0, what="both arms")

    async def rows(*args: str) -> list[str]:
        result = await dunning(cli, "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["invoice_id"] for row in json.loads(result.stdout)]

    async with run_worker(
        dev_env.client, dunning_rules=str(path), dunning_policy=str(POLICY_DIR / "default.yaml")
    ) as task_queue:
        handles = []
        for failed in cases.values():
            handle = await start_case(dev_env.client, failed.dunning_input(), task_queue)
            handles.append(handle)
            await eventually(partial(status, handle), lambda s: s.total_steps > 0, what="opened")
        for arm, failed in cases.items():
            # Visibility follows the workflow's search attributes a moment later.
            await eventually(
                partial(rows, "--variant", arm, "--customer", failed.customer),
                partial(operator.eq, [failed.invoice]),
                what=f"the {arm} case listed",
            )
            other = "b" if arm == "control" else "control"
            assert await rows("--variant", other, "--customer", failed.customer) == []
            both = await rows(
                "--segment", "everyone", "--variant", arm, "--customer", failed.customer
            )
            assert both == [failed.invoice]
        for handle in handles:
            await handle.terminate("test over")


async def test_a_quote_in_the_arm_is_a_usage_error(cli: CliRunner) -> None:
    result = await dunning(cli, "list", "--variant", "b' OR 1=1")
    assert result.exit_code == 2
    assert "quote" in result.output
