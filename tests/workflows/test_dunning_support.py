"""Support actions on running cases: grace, invalid requests, pause/resume, stop."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from models.dunning import (
    CaseStatus,
    GrantGraceInput,
    Outcome,
    PauseInput,
    ResumeInput,
    RetryNowInput,
    StopInput,
)
from models.ledger import Attempt, CaseOutcome, SupportAction
from starter.cases import start_case
from tests.deadline import eventually
from tests.workflows.helpers import (
    INSUFFICIENT,
    activity_times,
    advance_until,
    history_length,
    ledger_rows,
    sent_keys,
)
from workflows.dunning import DunningWorkflow


async def test_grace_moves_the_final_action_later_by_exactly_that_many_days(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        before = await advance_until(time_env, handle, lambda s: s.current_step == 2)
        granted = await handle.execute_update(
            DunningWorkflow.grant_grace,
            GrantGraceInput(days=5, reason="customer asked for time", by="alice"),
        )
        result = await handle.result()

    assert before.final_deadline is not None
    assert granted.new_final_deadline == before.final_deadline + timedelta(days=5)
    assert granted.state.grace_days_total == 5
    assert granted.state.grace[0].by == "alice"
    (final_at,) = await activity_times(handle, "apply_final_action")
    # The case opens (a local activity) in its first workflow task, when the run starts.
    opened_at = (await handle.fetch_history()).events[0].event_time.ToDatetime()
    assert abs(final_at - opened_at - timedelta(days=26)) < timedelta(minutes=1)
    assert (result.outcome, result.grace_days) == (Outcome.SUBSCRIPTION_CANCELED, 5)
    (action,) = ledger_rows(ledger, SupportAction, case.invoice)
    assert (action.action, action.days, action.by, action.via) == (
        "grant_grace",
        5,
        "alice",
        "update",
    )
    assert action.reason == "customer asked for time"


@pytest.mark.parametrize(
    ("grace", "message"),
    [
        (GrantGraceInput(days=0, reason="r", by="b"), "at least 1 day"),
        (GrantGraceInput(days=-3, reason="r", by="b"), "at least 1 day"),
        (GrantGraceInput(days=15, reason="r", by="b"), "14 days per grant"),
        (GrantGraceInput(days=2, reason="", by="b"), "reason is required"),
        (GrantGraceInput(days=2, reason="r", by="  "), "by is required"),
        # The ledger's column holds 255 characters: the validator says so, nothing is stored.
        (GrantGraceInput(days=2, reason="r", by="x" * 256), "by is limited to 255"),
        (GrantGraceInput(days=2, reason="r" * 501, by="b"), "reason is limited to 500"),
    ],
)
async def test_invalid_grace_is_rejected_without_a_history_event(
    dev_env: WorkflowEnvironment, run_worker, stripe_control, grace: GrantGraceInput, message: str
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(dev_env.client) as task_queue:
        handle = await start_case(dev_env.client, case.dunning_input(), task_queue)
        await advance_until(dev_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        events = await history_length(handle)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(DunningWorkflow.grant_grace, grace)
        assert message in str(info.value.cause)
        assert await history_length(handle) == events
        state = await handle.query(DunningWorkflow.status)
        assert state.grace == [] and state.grace_days_total == 0
        await handle.terminate("test done")


async def test_grace_over_the_total_and_on_a_closed_case_is_rejected(
    dev_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(dev_env.client) as task_queue:
        handle = await start_case(dev_env.client, case.dunning_input(), task_queue)
        await advance_until(dev_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        for _ in range(2):
            await handle.execute_update(
                DunningWorkflow.grant_grace, GrantGraceInput(days=14, reason="r", by="b")
            )
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(
                DunningWorkflow.grant_grace, GrantGraceInput(days=3, reason="r", by="b")
            )
        assert "28 already granted, 2 left" in str(info.value.cause)

        stopped = await handle.execute_update(
            DunningWorkflow.stop, StopInput(reason="handled by phone", by="bob")
        )
        assert stopped.state.status == CaseStatus.STOPPED
        result = await handle.result()
        # The case has ended: Temporal itself now refuses any update.
        with pytest.raises(Exception, match=r"(?i)completed|closed"):
            await handle.execute_update(
                DunningWorkflow.grant_grace, GrantGraceInput(days=1, reason="r", by="b")
            )
    assert (result.status, result.outcome, result.grace_days) == (
        CaseStatus.STOPPED,
        Outcome.STOPPED,
        28,
    )
    actions = ledger_rows(ledger, SupportAction, case.invoice)
    assert [a.action for a in actions] == ["grant_grace", "grant_grace", "stop"]
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert outcome.outcome == "stopped"


async def test_pause_resume_and_retry_now_validators(
    dev_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    # On the dev server: the time-skipping test server mishandles rejected updates.
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(dev_env.client) as task_queue:
        handle = await start_case(dev_env.client, case.dunning_input(), task_queue)
        await advance_until(dev_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(DunningWorkflow.resume, ResumeInput(by="b"))
        assert "not paused" in str(info.value.cause)
        await handle.execute_update(DunningWorkflow.pause, PauseInput(reason="dispute", by="b"))
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(DunningWorkflow.retry_now, RetryNowInput(by="b"))
        assert "paused; resume it first" in str(info.value.cause)
        await handle.terminate("test done")


async def test_pause_then_resume_holds_charges_and_moves_the_schedule(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        first = await advance_until(time_env, handle, lambda s: s.attempts == 1)
        paused = await handle.execute_update(
            DunningWorkflow.pause, PauseInput(reason="customer disputes the charge", by="carol")
        )
        assert paused.state.status == CaseStatus.PAUSED and paused.state.next_action_at is None
        await time_env.sleep(timedelta(hours=240))
        during = await handle.query(DunningWorkflow.status)
        assert (during.status, during.attempts) == (CaseStatus.PAUSED, 1)
        assert stripe_control.charge_count(case.invoice) == 2
        resumed = await handle.execute_update(DunningWorkflow.resume, ResumeInput(by="carol"))
        assert first.final_deadline and resumed.state.final_deadline
        moved = resumed.state.final_deadline - first.final_deadline
        assert timedelta(days=10) <= moved < timedelta(days=10, hours=2)
        assert resumed.state.status == CaseStatus.ACTIVE
        result = await handle.result()

    assert result.attempts == 4 and result.outcome == Outcome.SUBSCRIPTION_CANCELED
    assert sent_keys(sendgrid, case.invoice)[-1] == "final"
    actions = ledger_rows(ledger, SupportAction, case.invoice)
    assert [(a.action, a.by) for a in actions] == [("pause", "carol"), ("resume", "carol")]


async def test_stop_ends_the_case_without_final_action(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1)
        stopped = await handle.execute_update(
            DunningWorkflow.stop, StopInput(reason="paid by bank transfer", by="dave")
        )
        result = await handle.result()

    assert stopped.message.startswith("stopped")
    assert (result.status, result.outcome, result.attempts) == (
        CaseStatus.STOPPED,
        Outcome.STOPPED,
        1,
    )
    assert stripe_control.charge_count(case.invoice) == 2
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status != "canceled"
    assert sent_keys(sendgrid, case.invoice) == []
    (action,) = ledger_rows(ledger, SupportAction, case.invoice)
    assert (action.action, action.reason, action.by) == ("stop", "paid by bank transfer", "dave")


async def test_support_signals_apply_and_invalid_ones_are_ignored(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        await handle.signal("grant_grace", GrantGraceInput(days=99, reason="r", by="ui"))
        await handle.signal("grant_grace", {"days": "not a number"})
        await handle.signal("grant_grace", GrantGraceInput(days=2, reason="r", by="ui"))
        await handle.signal("stop", StopInput(reason="from the UI", by="ui"))
        result = await handle.result()

    assert (result.outcome, result.grace_days) == (Outcome.STOPPED, 2)
    actions = ledger_rows(ledger, SupportAction, case.invoice)
    assert [(a.action, a.via) for a in actions] == [("grant_grace", "signal"), ("stop", "signal")]


async def test_retry_now_charges_at_once_outside_the_schedule(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        first = await advance_until(time_env, handle, lambda s: s.attempts == 1)
        stripe_control.use_card(case.customer, "pm_card_visa")
        answer = await handle.execute_update(DunningWorkflow.retry_now, RetryNowInput(by="erin"))
        result = await handle.result()

    assert answer.message == "a charge attempt runs now"
    assert (result.outcome, result.attempts, result.recovered_step) == (Outcome.RECOVERED, 2, None)
    assert first.current_step == 1  # recovered before step 2 was due
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert [(a.trigger, a.outcome) for a in attempts] == [
        ("schedule", "declined"),
        ("support", "succeeded"),
    ]
    (action,) = ledger_rows(ledger, SupportAction, case.invoice)
    assert (action.action, action.by) == ("retry_now", "erin")


async def test_support_actions_are_refused_while_the_final_action_runs(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        # Only the cancellation touches the subscription from here on; its answer is held
        # back, so the final action stays in flight a while.
        stripe_control.fault("hang", count=1, path_contains=case.subscription, hang_seconds=8)
        finished = asyncio.ensure_future(handle.result())  # lets time skip to the deadline
        await eventually(
            lambda: activity_times(handle, "apply_final_action"), what="final action started"
        )
        await handle.signal("stop", StopInput(reason="invoice voided in Stripe", by="stripe:evt"))
        result = await finished

    assert (result.status, result.outcome) == (CaseStatus.CANCELED, Outcome.SUBSCRIPTION_CANCELED)
    assert ledger_rows(ledger, SupportAction, case.invoice) == []
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert outcome.outcome == "subscription_canceled"
