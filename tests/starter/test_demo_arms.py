"""The demo under `policies/demo-rules.yaml`: both arms of its experiment get cases, and the
arm the demo prints is the one the worker records (DunningVariant)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from policies.loader import POLICY_DIR
from standins.server import BackgroundServer
from standins.stripe_api import create_app as create_stripe_app
from starter.cases import case_handle
from starter.cli import UserError, demo_arms
from starter.cli import demo as demo_logic
from tests.deadline import eventually
from workflows import search_attributes as sa

DEMO = str(demo_arms.DEMO_RULES)
SECRET = "whsec_demo_arms_test"


@asynccontextmanager
async def _api(settings: Settings, client: Client, ledger: Any) -> AsyncIterator[str]:
    from starter.app import create_app

    server = BackgroundServer(create_app(settings, client=client, ledger=ledger)).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_the_demo_experiment_is_the_default_rules_running_one() -> None:
    experiment = demo_arms.demo_experiment(DEMO, count=2)
    assert experiment is not None
    assert [arm.name for arm in experiment.arms] == ["control", "b"]
    # Fewer cases than arms: the demo does not grow to show them all.
    assert demo_arms.demo_experiment(DEMO, count=1) is None
    assert demo_arms.demo_experiment("", count=5) is None


def test_a_bad_rules_file_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules: []\n", encoding="utf-8")
    with pytest.raises(UserError, match="bad rules file"):
        demo_arms.demo_experiment(str(bad), count=2)


async def test_cover_adds_customers_until_every_arm_has_one() -> None:
    experiment = demo_arms.demo_experiment(DEMO, count=2)
    assert experiment is not None
    ids = [f"cus_{n}" for n in range(50)]
    controls = [c for c in ids if demo_arms.arm_of(experiment, c) == "control"]
    b = next(c for c in ids if demo_arms.arm_of(experiment, c) == "b")
    pool = iter([controls[1], controls[2], b, "cus_unused"])

    async def another() -> str:
        return next(pool)

    settings = Settings(dunning_rules=DEMO)
    arms = await demo_arms.cover(settings, 2, [controls[0]], another)
    # Added until the b customer came, and not one more.
    assert arms == {controls[0]: "control", controls[1]: "control", controls[2]: "control", b: "b"}
    assert next(pool) == "cus_unused"
    none = await demo_arms.cover(Settings(dunning_rules=""), 2, ["cus_1"], another)
    assert none == {}


async def test_demo_cases_cover_both_arms_as_the_worker_records_them(
    dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings, ledger: Any
) -> None:
    with BackgroundServer(create_stripe_app()) as stripe:
        overrides = {
            "stripe_api_base": stripe.url,
            "dunning_policy": str(POLICY_DIR / "demo.yaml"),
            "dunning_rules": DEMO,
        }
        async with run_worker(dev_env.client, **overrides) as task_queue:
            api_settings = settings.model_copy(
                update={
                    **overrides,
                    "dunning_task_queue": task_queue,
                    "stripe_webhook_secret": SECRET,
                    "dunning_env": "dev",
                }
            )
            async with _api(api_settings, dev_env.client, ledger) as api_url:
                console = Console(record=True, width=200)
                cases = await demo_logic.create_cases(
                    api_settings, dev_env.client, count=2, api_url=api_url,
                    stripe_url=stripe.url, webhook_secret=SECRET, recover_after=0,
                    console=console,
                )  # fmt: skip
                console.print(demo_logic.plan_table(cases))
                recorded = {}
                for case in cases:
                    handle = case_handle(dev_env.client, case.invoice)
                    described = await eventually(
                        handle.describe,
                        lambda d: d.typed_search_attributes.get(sa.DUNNING_VARIANT) is not None,
                        what=f"{case.invoice}'s arm",
                    )
                    recorded[case.invoice] = described.typed_search_attributes.get(
                        sa.DUNNING_VARIANT
                    )
                for case in cases:  # leave no open case behind on the shared dev server
                    with contextlib.suppress(RPCError):
                        await case_handle(dev_env.client, case.invoice).terminate("test done")
    assert {case.arm for case in cases} == {"control", "b"}
    assert recorded == {case.invoice: case.arm for case in cases}
    text = console.export_text()
    assert "Arm" in text
    assert all(f"{case.invoice} " in text for case in cases)
