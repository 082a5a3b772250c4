"""Replay saved histories against the current workflow code.

A change that would break running cases (non-determinism) fails here before it is deployed.
To record fresh histories after an intentional, versioned change:

    DUNNING_RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_replay.py -k record
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from models.dunning import GrantGraceInput, PauseInput, PaymentMethodUpdatedInput, ResumeInput
from models.temporal import converter_for
from starter.cases import start_case
from tests.conftest import TEST_KEYRING
from tests.workflows.helpers import INSUFFICIENT, advance_until
from tests.workflows.test_dunning_payday import POLICY as PAYDAY_POLICY
from workflows.dunning import DunningWorkflow

HISTORIES = Path(__file__).parent / "histories"
# Each recording keeps its own files: histories of earlier code paths (cases still running
# when a change ships) must keep replaying too. Name new recordings after the change.
RECORDING = "final-action-looks-itself"


def saved_histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def test_histories_are_saved() -> None:
    assert len(saved_histories()) >= 2


@pytest.mark.parametrize("path", saved_histories(), ids=lambda p: p.stem)
async def test_replay_saved_history(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # Histories recorded since encryption are encrypted with the suite's public test key;
    # older plain ones pass through the codec unchanged.
    replayer = Replayer(workflows=[DunningWorkflow], data_converter=converter_for(TEST_KEYRING))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.skipif(
    not os.environ.get("DUNNING_RECORD_HISTORIES"), reason="records histories on request only"
)
async def test_record_histories(
    time_env: WorkflowEnvironment, run_worker, stripe_control, tmp_path: Path
) -> None:
    HISTORIES.mkdir(exist_ok=True)
    async with run_worker(time_env.client) as task_queue:
        # A case that meets most handlers: grace, pause/resume, a card update, recovery.
        case = stripe_control.failed_invoice(INSUFFICIENT)
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.current_step == 2)
        await handle.execute_update(
            DunningWorkflow.grant_grace, GrantGraceInput(days=3, reason="asked", by="support")
        )
        await handle.execute_update(DunningWorkflow.pause, PauseInput(reason="check", by="s"))
        await handle.execute_update(DunningWorkflow.resume, ResumeInput(by="s"))
        # A late event for the card that failed: skipped (skip-tried-cards).
        failed = stripe_control.charges(case.invoice)["attempts"][0]["payment_method"]
        late = PaymentMethodUpdatedInput(payment_method_id=failed)
        await handle.signal(DunningWorkflow.payment_method_updated, late)
        stripe_control.use_card(case.customer, "pm_card_visa")
        await handle.signal(DunningWorkflow.payment_method_updated, PaymentMethodUpdatedInput())
        await handle.result()
        (HISTORIES / f"{RECORDING}-recovered_after_grace.json").write_text(
            (await handle.fetch_history()).to_json()
        )
        # A case that runs the whole schedule to the final action.
        case = stripe_control.failed_invoice(INSUFFICIENT)
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await handle.result()
        (HISTORIES / f"{RECORDING}-canceled_after_schedule.json").write_text(
            (await handle.fetch_history()).to_json()
        )
    # A payday step read on the customer's calendar (local-paydays), to its first charge.
    policy = tmp_path / "payday_test.yaml"
    policy.write_text(PAYDAY_POLICY)
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.customers.update(case.customer, params={"address": {"country": "AU"}})
    async with run_worker(time_env.client, dunning_policy=str(policy)) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 2, step=timedelta(hours=6))
        await handle.terminate("recorded")
        (HISTORIES / f"{RECORDING}-payday_step.json").write_text(
            (await handle.fetch_history()).to_json()
        )
