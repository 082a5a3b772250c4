"""The payment page's Updates on running cases: a new card, pay now, more time, pause, cancel
and "talk to a person" — each validated before it enters history, recorded once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from models import customer_actions as names
from models.customer_actions import (
    CustomerActionResult,
    CustomerCancelInput,
    CustomerContactInput,
    CustomerMoreTimeInput,
    CustomerNewCardInput,
    CustomerPauseInput,
    CustomerPayNowInput,
)
from models.dunning import Outcome
from models.ledger import Attempt, CustomerAction
from starter.cases import start_case
from tests.workflows.helpers import (
    EXPIRED,
    INSUFFICIENT,
    advance_until,
    history_length,
    ledger_rows,
    sent_keys,
)


async def act(handle: WorkflowHandle[Any, Any], name: str, arg: Any) -> CustomerActionResult:
    return await handle.execute_update(
        name, arg, id=arg.request_id, result_type=CustomerActionResult
    )


async def test_a_new_card_from_the_page_is_charged_once_and_recovers_the_case(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(EXPIRED)
    card = stripe_control.sdk.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": case.customer}
    ).id
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        new_card = CustomerNewCardInput(request_id="r1", payment_method_id=card)
        answer = await act(handle, names.CUSTOMER_NEW_CARD, new_card)
        result = await handle.result()

    assert answer.message == "we are charging your new card now"
    assert result.outcome == Outcome.RECOVERED
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert [(a.trigger, a.outcome) for a in attempts] == [("payment_method_updated", "succeeded")]
    (action,) = ledger_rows(ledger, CustomerAction, case.invoice)
    assert (action.action, action.detail, action.request_id) == ("new_card", card, "r1")


async def test_pay_now_charges_at_once_and_a_repeated_click_is_one_action(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        first = await act(handle, names.CUSTOMER_PAY_NOW, CustomerPayNowInput(request_id="p1"))
        again = await act(handle, names.CUSTOMER_PAY_NOW, CustomerPayNowInput(request_id="p1"))
        await advance_until(time_env, handle, lambda s: s.attempts == 1, step=timedelta(0))
        await handle.terminate("test done")

    assert first.message == again.message == "we are charging your card now"
    assert [a.trigger for a in ledger_rows(ledger, Attempt, case.invoice)] == ["customer"]
    assert len(ledger_rows(ledger, CustomerAction, case.invoice)) == 1


async def test_more_time_beyond_the_limit_is_refused_without_a_history_event(
    dev_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(dev_env.client) as task_queue:
        handle = await start_case(dev_env.client, case.dunning_input(), task_queue)
        state = await advance_until(dev_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        assert state.next_action_at is not None
        events = await history_length(handle)
        too_late = state.next_action_at.date() + timedelta(days=8)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(
                handle,
                names.CUSTOMER_MORE_TIME,
                CustomerMoreTimeInput(request_id="m0", until=too_late),
            )
        assert "no later than" in str(refused.value.cause)
        assert await history_length(handle) == events  # a refusal leaves no trace
        await handle.terminate("test done")


async def test_more_time_within_the_limit_moves_the_schedule_once_per_case(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        before = await advance_until(time_env, handle, lambda s: s.current_step == 1)
        assert before.next_action_at is not None
        next_day = before.next_action_at.date()
        granted = await act(
            handle,
            names.CUSTOMER_MORE_TIME,
            CustomerMoreTimeInput(request_id="m1", until=next_day + timedelta(days=3)),
        )
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await act(
                handle,
                names.CUSTOMER_MORE_TIME,
                CustomerMoreTimeInput(request_id="m2", until=next_day + timedelta(days=4)),
            )
        await handle.terminate("test done")

    assert "already given once" in str(twice.value.cause)
    assert granted.state.grace[0].by == "customer" and granted.state.grace_days_total == 3
    assert granted.state.next_action_at == before.next_action_at + timedelta(days=3)
    # Step 2 charges: the page says when the card is tried again.
    assert granted.state.next_charge_at == granted.state.next_action_at
    (action,) = ledger_rows(ledger, CustomerAction, case.invoice)
    assert action.detail == (next_day + timedelta(days=3)).isoformat()


async def test_pause_sets_pause_collection_at_stripe_and_ends_the_case(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        answer = await act(handle, names.CUSTOMER_PAUSE, CustomerPauseInput(request_id="x1"))
        result = await handle.result()

    assert result.outcome == Outcome.PAUSED_BY_CUSTOMER
    assert answer.message.startswith("your subscription is paused until ")
    pause = stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).pause_collection
    assert pause is not None and pause.behavior == "keep_as_draft" and pause.resumes_at
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status != "canceled"


async def test_cancel_runs_the_final_action_now_without_a_last_look_charge(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        # A card the case never charged would get a last-look charge at a scheduled final
        # action; a customer who asks to cancel is not charged instead.
        stripe_control.use_card(case.customer, "pm_card_visa")
        answer = await act(handle, names.CUSTOMER_CANCEL, CustomerCancelInput(request_id="c1"))
        result = await handle.result()

    assert result.outcome == Outcome.SUBSCRIPTION_CANCELED
    assert answer.message.startswith("done: subscription canceled")
    assert ledger_rows(ledger, Attempt, case.invoice) == []
    assert sent_keys(sendgrid, case.invoice) == ["final"]


async def test_talk_to_a_person_holds_the_next_message_and_reaches_the_ledger(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        message = "I get paid on Friday, can you wait?"
        await act(
            handle, names.CUSTOMER_CONTACT, CustomerContactInput(request_id="t1", message=message)
        )
        # Step 2 (day 3, the first message) falls inside the 3-day hold; step 3 (day 7) not.
        state = await advance_until(time_env, handle, lambda s: s.current_step == 3)
        await handle.terminate("test done")

    (action,) = ledger_rows(ledger, CustomerAction, case.invoice)
    assert (action.action, action.detail) == ("contact", message)
    assert sent_keys(sendgrid, case.invoice) == ["step:3"]
    assert (
        "reminder" in state.notifications_sent and "payment_failed" not in state.notifications_sent
    )
    history = await handle.fetch_history()
    assert message not in history.to_json()  # the text stays out of details (and is encrypted)
