"""The support service: what the CLI, the API and the console all rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from starter.cases import start_case
from starter.support.service import (
    ActionRejected,
    CaseNotFound,
    action_input,
    case_status,
    list_cases,
    list_query,
    run_action,
)
from tests.standin_control import StripeControl


def test_list_query_combines_filters_and_refuses_quotes() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    query = list_query(status="paused", customer="cus_1", due_within=timedelta(hours=24), now=now)
    assert query == (
        "WorkflowType = 'DunningWorkflow' AND DunningStatus = 'paused' AND CustomerId = 'cus_1'"
        " AND NextActionAt <= '2026-01-02T00:00:00+00:00' AND ExecutionStatus = 'Running'"
    )
    with pytest.raises(ValueError, match="quote"):
        list_query(customer="x' OR 1=1")


async def test_actions_status_and_unknown_cases(
    dev_env: WorkflowEnvironment, run_worker, settings
) -> None:
    client = dev_env.client
    with pytest.raises(CaseNotFound, match="no dunning case exists for invoice in_nope"):
        await case_status(client, "in_nope")
    with pytest.raises(CaseNotFound):
        await run_action(client, "in_nope", "pause", action_input("pause", reason="r", by="b"))

    case = StripeControl(settings).failed_invoice("pm_card_chargeDeclinedInsufficientFunds")
    async with run_worker(client) as task_queue:
        await start_case(client, case.dunning_input(), task_queue)
        for _ in range(100):
            state = await case_status(client, case.invoice)
            if state.total_steps:
                break
        with pytest.raises(ActionRejected, match="14 days per grant"):
            await run_action(
                client, case.invoice, "grace", action_input("grace", days=20, reason="r", by="b")
            )
        granted = await run_action(
            client, case.invoice, "grace", action_input("grace", days=3, reason="asked", by="ann")
        )
        assert granted.state.grace_days_total == 3
        rows = await list_cases(client, list_query(customer=case.customer))
        for _ in range(50):
            if rows:
                break
            rows = await list_cases(client, list_query(customer=case.customer))
        assert [r.invoice_id for r in rows] == [case.invoice]
        assert rows[0].status == "active" and rows[0].currency == "EUR"
        await run_action(
            client, case.invoice, "stop", action_input("stop", reason="done", by="ann")
        )
        handle = client.get_workflow_handle(f"dunning-{case.invoice}")
        await handle.result()
        with pytest.raises(ActionRejected, match="closed"):
            await run_action(client, case.invoice, "resume", action_input("resume", by="ann"))
        assert (await case_status(client, case.invoice)).status == "stopped"
