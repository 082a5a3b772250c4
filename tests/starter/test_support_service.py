"""The support service: what the CLI, the API and the console all rely on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from models.ledger import SupportAction
from starter.cases import start_case
from starter.support.service import (
    ActionRejected,
    BadRequestId,
    CaseNotFound,
    action_input,
    case_status,
    list_cases,
    list_query,
    request_id_or_new,
    run_action,
)
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.workflows.helpers import INSUFFICIENT, ledger_rows, open_case


def test_list_query_combines_filters_and_refuses_quotes() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    query = list_query(status="paused", customer="cus_1", due_within=timedelta(hours=24), now=now)
    assert query == (
        "WorkflowType = 'DunningWorkflow' AND DunningStatus = 'paused'"
        " AND ExecutionStatus = 'Running' AND CustomerId = 'cus_1'"
        " AND NextActionAt <= '2026-01-02T00:00:00+00:00'"
    )
    # A terminated case keeps DunningStatus 'active': open statuses mean running workflows.
    assert "ExecutionStatus = 'Running'" in list_query(status="active")
    ended = list_query(status="ended")
    assert "ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed', 'Canceled')" in ended
    assert "DunningStatus" not in ended
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

    case = StripeControl(settings).failed_invoice(INSUFFICIENT)
    async with run_worker(client) as task_queue:
        await start_case(client, case.dunning_input(), task_queue)
        await eventually(
            lambda: case_status(client, case.invoice),
            lambda state: bool(state.total_steps),
            what="the case opened (policy loaded)",
        )
        with pytest.raises(ActionRejected, match="14 days per grant"):
            await run_action(
                client, case.invoice, "grace", action_input("grace", days=20, reason="r", by="b")
            )
        granted = await run_action(
            client, case.invoice, "grace", action_input("grace", days=3, reason="asked", by="ann")
        )
        assert granted.state.grace_days_total == 3
        rows = await eventually(
            lambda: list_cases(client, list_query(customer=case.customer)),
            what="the case listed by visibility",
        )
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


async def test_the_same_request_id_applies_an_action_once(
    dev_env: WorkflowEnvironment, run_worker, settings, ledger
) -> None:
    client = dev_env.client
    async with run_worker(client) as task_queue:
        case, _ = await open_case(client, settings, task_queue)
        grace = action_input("grace", days=2, reason="asked", by="ann")
        first = await run_action(client, case.invoice, "grace", grace, "retry-me")
        again = await run_action(client, case.invoice, "grace", grace, "retry-me")
        other = await run_action(client, case.invoice, "grace", grace, "another-request")
        # The worker writes the audit rows through an activity: wait while it runs.
        rows = await eventually(
            lambda: asyncio.to_thread(ledger_rows, ledger, SupportAction, case.invoice),
            lambda found: len(found) >= 2,
            what="the audit rows",
        )

    assert first == again  # the retry got the first answer, nothing applied twice
    assert [g.days for g in first.state.grace] == [2]
    assert [g.days for g in other.state.grace] == [2, 2]
    assert [(r.action, r.days) for r in rows] == [("grant_grace", 2), ("grant_grace", 2)]


def test_request_ids_are_checked() -> None:
    assert len(request_id_or_new(None)) == 32 and request_id_or_new("") != request_id_or_new("")
    assert request_id_or_new("ticket 4711/retry") == "ticket 4711/retry"
    for bad in ("x" * 201, "tab\there", "naïve"):
        with pytest.raises(BadRequestId):
            request_id_or_new(bad)
