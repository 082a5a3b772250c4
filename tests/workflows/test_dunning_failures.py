"""Failures and races: paid before start, Stripe's own failure events, outages, bad addresses."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from models.dunning import (
    CaseStatus,
    Outcome,
    PaymentActionRequiredInput,
    PaymentFailedInput,
    PaymentSucceededInput,
)
from models.ledger import Attempt, Case, CaseOutcome, Notification
from starter.cases import start_case
from tests.workflows.helpers import EXPIRED, INSUFFICIENT, advance_until, ledger_rows, sent_keys
from workflows.dunning import DunningWorkflow


async def test_invoice_already_paid_at_start_ends_quietly(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.invoices.pay(case.invoice, params={"paid_out_of_band": True})
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert (result.status, result.outcome, result.attempts) == (
        CaseStatus.RECOVERED,
        Outcome.ALREADY_PAID,
        0,
    )
    assert stripe_control.charge_count(case.invoice) == 1
    assert sent_keys(sendgrid, case.invoice) == []
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert outcome.outcome == "already_paid"


async def test_stripe_reporting_our_own_failure_adds_no_attempt(
    time_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        before = await advance_until(time_env, handle, lambda s: s.attempts == 1)
        for _ in range(3):  # Stripe may deliver the same event several times
            await handle.signal(
                DunningWorkflow.payment_failed,
                PaymentFailedInput(decline_code="card_velocity_exceeded", attempt_count=2),
            )
        after = await handle.query(DunningWorkflow.status)
        await handle.terminate("test done")

    assert (after.attempts, after.current_step) == (before.attempts, before.current_step) == (1, 1)
    assert after.next_action_at == before.next_action_at
    assert after.last_decline_code == "card_velocity_exceeded"
    assert stripe_control.charge_count(case.invoice) == 2


async def test_transient_stripe_500_during_a_retry_gives_one_charge_and_one_email(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1)
        stripe_control.fault("500", count=2, path_contains=f"{case.invoice}/pay")
        state = await advance_until(
            time_env, handle, lambda s: "payment_failed" in s.notifications_sent
        )
        await handle.terminate("test done")

    assert state.attempts == 2
    assert stripe_control.charge_count(case.invoice) == 3  # original + attempt 1 + attempt 2
    pays = [r for r in stripe_control.requests() if r["path"].endswith(f"{case.invoice}/pay")]
    assert [r["status"] for r in pays[-3:]] == [500, 500, 402]
    # Stripe saved each 500 under its key: the retries went out under new key generations.
    key = f"dunning-{case.invoice}:charge:2"
    assert [r["idempotency_key"] for r in pays[-3:]] == [key, f"{key}:r2", f"{key}:r3"]
    assert sent_keys(sendgrid, case.invoice) == ["step:2"]
    assert [a.attempt_no for a in ledger_rows(ledger, Attempt, case.invoice)] == [1, 2]


async def test_lost_stripe_response_is_replayed_not_charged_twice(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.use_card(case.customer, "pm_card_visa")
    # The charge happens but the answer arrives after the client's 3 s timeout.
    stripe_control.fault("hang", count=1, path_contains=f"{case.invoice}/pay", hang_seconds=5)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert (result.outcome, result.attempts) == (Outcome.RECOVERED, 1)
    assert stripe_control.charge_count(case.invoice) == 2  # original decline + one success
    pays = [r for r in stripe_control.requests() if r["path"].endswith(f"{case.invoice}/pay")]
    assert any(r.get("replayed") for r in pays)
    (attempt,) = ledger_rows(ledger, Attempt, case.invoice)
    assert (attempt.outcome, attempt.idempotency_key) == (
        "succeeded",
        f"dunning-{case.invoice}:charge:1",
    )


async def test_sendgrid_400_is_recorded_and_the_case_goes_on(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, email="bounce@example.com")
    sendgrid.fault(400, count=1, to_contains="bounce@")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert result.outcome == Outcome.SUBSCRIPTION_CANCELED and result.attempts == 4
    rows = ledger_rows(ledger, Notification, case.invoice)
    notifications = [n for n in rows if n.channel == "email"]  # the SMS have no phone to go to
    assert [(n.template, n.status) for n in notifications] == [
        ("payment_failed", "rejected"),
        ("reminder", "sent"),
        ("urgent", "sent"),
        ("final_notice", "sent"),
        ("canceled", "sent"),
    ]
    assert "valid address" in (notifications[0].error or "")
    assert sent_keys(sendgrid, case.invoice) == ["step:3", "step:4", "step:5", "final"]


async def test_sendgrid_outage_is_retried_and_the_message_goes_out_once(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, email="flaky@example.com")
    sendgrid.fault(503, count=1, to_contains="flaky@")
    sendgrid.fault(429, count=1, to_contains="flaky@")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: "payment_failed" in s.notifications_sent)
        await handle.terminate("test done")

    assert sent_keys(sendgrid, case.invoice) == ["step:2"]
    (notification,) = ledger_rows(ledger, Notification, case.invoice)
    assert notification.status == "sent" and notification.claim_attempt == 3


async def test_authentication_needed_sends_the_payment_link(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice("pm_card_authenticationRequired")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        state = await advance_until(
            time_env,
            handle,
            lambda s: "authentication_needed" in s.notifications_sent,
            step=timedelta(minutes=10),
        )
        await handle.signal(DunningWorkflow.payment_action_required, PaymentActionRequiredInput())
        await handle.signal(
            DunningWorkflow.payment_succeeded, PaymentSucceededInput(amount_paid=1200)
        )
        result = await handle.result()

    assert state.decline_class == "authentication" and state.attempts == 0
    (first, *_), keys = sendgrid.messages(case.invoice), sent_keys(sendgrid, case.invoice)
    invoice = stripe_control.sdk.v1.invoices.retrieve(case.invoice)
    assert invoice.hosted_invoice_url and invoice.hosted_invoice_url in first["text"]
    assert keys[0] == "ask:authentication:0" and keys[-1] == "recovered"
    assert (result.outcome, result.amount_recovered) == (Outcome.RECOVERED, 1200)
    assert stripe_control.charge_count(case.invoice) == 1
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert (outcome.outcome, outcome.amount_recovered) == ("recovered", 1200)


async def test_payment_action_required_sends_the_authentication_email(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1)
        await handle.signal(DunningWorkflow.payment_action_required, PaymentActionRequiredInput())
        state = await advance_until(
            time_env, handle, lambda s: "authentication_needed" in s.notifications_sent
        )
        await handle.terminate("test done")

    assert state.decline_class == "authentication"
    assert sent_keys(sendgrid, case.invoice) == ["ask:authentication:1"]
    (message,) = sendgrid.messages(case.invoice)
    invoice = stripe_control.sdk.v1.invoices.retrieve(case.invoice)
    assert invoice.hosted_invoice_url and invoice.hosted_invoice_url in message["text"]


async def test_case_opened_without_decline_code_reads_it_from_stripe(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    """invoice.payment_failed does not carry the decline: the case looks it up once."""
    case = stripe_control.failed_invoice(EXPIRED)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(
            time_env.client, case.dunning_input(decline_code=None), task_queue
        )
        state = await advance_until(time_env, handle, lambda s: s.notifications_sent != [])
        await handle.terminate("test done")

    assert (state.last_decline_code, state.last_advice_code) == (
        "expired_card",
        "confirm_card_data",
    )
    assert state.decline_class == "new_payment_method" and state.attempts == 0
    assert sent_keys(sendgrid, case.invoice) == ["ask:new_payment_method:0"]
    assert stripe_control.charge_count(case.invoice) == 1
    (row,) = ledger_rows(ledger, Case, case.invoice)
    assert row.first_decline_code == "expired_card"
