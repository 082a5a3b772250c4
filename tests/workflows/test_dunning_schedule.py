"""DunningWorkflow through whole schedules on the time-skipping server, with the stand-ins.

Every scenario checks what reached Stripe and SendGrid and what the ledger holds, not only
the workflow's result.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, Outcome, PaymentMethodUpdatedInput
from models.ledger import Attempt, CaseOutcome, Notification
from starter.cases import start_case
from tests.workflows.helpers import (
    EXPIRED,
    INSUFFICIENT,
    advance_until,
    ledger_rows,
    sent_keys,
)
from workflows.dunning import DunningWorkflow


async def test_recovered_on_the_second_retry(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, amount=1999, currency="eur")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1)
        stripe_control.use_card(case.customer, "pm_card_visa")
        result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.RECOVERED, Outcome.RECOVERED)
    assert (result.attempts, result.recovered_step, result.amount_recovered) == (2, 2, 1999)
    assert stripe_control.charge_count(case.invoice) == 3  # Stripe's own attempt + our two
    assert sent_keys(sendgrid, case.invoice) == ["recovered"]  # day-1 retry is silent
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert [(a.attempt_no, a.outcome) for a in attempts] == [(1, "declined"), (2, "succeeded")]
    assert attempts[0].decline_code == "insufficient_funds"
    assert attempts[1].idempotency_key == f"dunning-{case.invoice}:charge:2"
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert (outcome.outcome, outcome.amount_recovered, outcome.recovered_step) == (
        "recovered",
        1999,
        2,
    )


async def test_card_updated_mid_schedule_retries_at_once(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        before = await advance_until(
            time_env, handle, lambda s: "payment_failed" in s.notifications_sent
        )
        stripe_control.use_card(case.customer, "pm_card_visa")
        await handle.signal(DunningWorkflow.payment_method_updated, PaymentMethodUpdatedInput())
        result = await handle.result()

    assert before.current_step == 2
    assert (result.outcome, result.attempts, result.recovered_step) == (Outcome.RECOVERED, 3, None)
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert [a.trigger for a in attempts] == ["schedule", "schedule", "payment_method_updated"]
    assert sent_keys(sendgrid, case.invoice) == ["step:2", "recovered"]
    assert stripe_control.charge_count(case.invoice) == 4


async def test_decline_needing_a_new_card_is_never_retried_automatically(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(EXPIRED)
    assert case.decline_code == "expired_card"
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert stripe_control.charge_count(case.invoice) == 1  # only Stripe's original attempt
    assert result.attempts == 0 and result.outcome == Outcome.SUBSCRIPTION_CANCELED
    messages = sendgrid.messages(case.invoice)
    first = messages[0]
    assert first["custom_args"]["dunning_dedupe_key"].endswith(":ask:new_payment_method:0")
    assert "update your card" in first["text"].lower()
    assert ledger_rows(ledger, Attempt, case.invoice) == []


async def test_all_retries_fail_final_action_once_and_cancellation_email(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, currency="usd", amount=4900)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.CANCELED, Outcome.SUBSCRIPTION_CANCELED)
    assert result.attempts == 4
    assert stripe_control.charge_count(case.invoice) == 5
    cancels = [
        r
        for r in stripe_control.requests()
        if r["method"] == "DELETE" and case.subscription in r["path"]
    ]
    assert len(cancels) == 1
    subscription = stripe_control.sdk.v1.subscriptions.retrieve(case.subscription)
    assert subscription.status == "canceled"
    assert sent_keys(sendgrid, case.invoice) == ["step:2", "step:3", "step:4", "step:5", "final"]
    rows = ledger_rows(ledger, Notification, case.invoice)
    notifications = [n for n in rows if n.channel == "email"]
    assert [n.template for n in notifications] == [
        "payment_failed",
        "reminder",
        "urgent",
        "final_notice",
        "canceled",
    ]
    assert all(n.status == "sent" for n in notifications)
    # The default policy texts the urgent and final notices too; this customer has no phone,
    # which the case knows from opening: no text is attempted, the details say why.
    assert [n for n in rows if n.channel == "sms"] == []
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert (outcome.outcome, outcome.attempts) == ("subscription_canceled", 4)
    with ledger.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.invoice_id == case.invoice)
        )
    assert count == 4


async def test_a_card_attached_but_not_default_is_the_one_charged(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    attached = stripe_control.sdk.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": case.customer}
    )
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        await handle.signal(
            DunningWorkflow.payment_method_updated,
            PaymentMethodUpdatedInput(payment_method_id=attached.id),
        )
        result = await handle.result()

    assert (result.outcome, result.attempts) == (Outcome.RECOVERED, 1)
    (charge,) = stripe_control.charges(case.invoice)["attempts"][1:]
    assert (charge["payment_method"], charge["outcome"]) == (attached.id, "succeeded")
