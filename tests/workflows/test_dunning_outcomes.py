"""Wrong-outcome paths (issue 7 §1): each case ends the way the money says, never FAILED.

Cases start the way the webhook starts them (starter.cases.start_case: signal-with-start).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, Outcome, PaymentSucceededInput, StopInput
from models.ledger import Attempt, CaseOutcome
from starter.cases import start_case
from tests.deadline import eventually
from tests.workflows.helpers import EXPIRED, INSUFFICIENT, advance_until, ledger_rows, sent_keys
from workflows.dunning import DunningWorkflow


async def test_a_payment_stripe_never_reported_wins_at_the_final_action(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.current_step == 5)
        # Paid on day 20; the invoice.paid webhook is still in flight.
        stripe_control.sdk.v1.invoices.pay(case.invoice, params={"paid_out_of_band": True})
        result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.RECOVERED, Outcome.RECOVERED)
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status != "canceled"
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert outcome.outcome == "recovered" and outcome.amount_recovered > 0
    assert "final" not in sent_keys(sendgrid, case.invoice)
    assert sent_keys(sendgrid, case.invoice)[-1] == "recovered"


async def test_a_new_default_card_whose_webhook_was_lost_is_charged_before_canceling(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.current_step == 5)
        # customer.updated / payment_method.attached answered 503 during an outage: no signal.
        stripe_control.use_card(case.customer, "pm_card_visa")
        result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.RECOVERED, Outcome.RECOVERED)
    assert stripe_control.sdk.v1.invoices.retrieve(case.invoice).status == "paid"
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status != "canceled"
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert (attempts[-1].trigger, attempts[-1].outcome) == ("last_look", "succeeded")


async def test_a_card_given_before_the_case_existed_is_charged_when_it_opens(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid
) -> None:
    """The start event met a Temporal outage (503); customer.updated found no case to signal."""
    case = stripe_control.failed_invoice(EXPIRED)
    stripe_control.use_card(case.customer, "pm_card_visa")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert (result.outcome, result.attempts) == (Outcome.RECOVERED, 1)
    assert stripe_control.charge_count(case.invoice) == 2
    assert sent_keys(sendgrid, case.invoice) == ["recovered"]


async def test_stripe_refusing_the_invoice_ends_the_case_as_error_not_failed(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    missing = case.dunning_input(invoice_id="in_doesNotExist")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, missing, task_queue)
        # A result, not WorkflowFailureError: the run completed.
        result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.ERROR, Outcome.ERROR)
    assert result.reason and "StripeInvalidRequest" in result.reason
    (outcome,) = ledger_rows(ledger, CaseOutcome, "in_doesNotExist")
    assert outcome.outcome == "error" and "404" in (outcome.reason or "")


async def test_a_case_opens_on_the_invoice_alone(
    time_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    """Against a Stripe implementation without /v1/invoice_payments (404, HTML body)."""
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.fault("not_found", count=1, path_contains="/v1/invoice_payments")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(
            time_env.client, case.dunning_input(decline_code=None), task_queue
        )
        state = await advance_until(time_env, handle, lambda s: s.attempts == 1)
        await handle.terminate("test done")
    assert state.total_steps == 5 and state.last_decline_code == "insufficient_funds"
    assert stripe_control.charge_count(case.invoice) == 2


async def test_a_stop_while_the_case_opens_is_kept(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.fault(
        "delay", count=1, path_contains=f"/v1/invoices/{case.invoice}", hang_seconds=3
    )
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        stop = StopInput(reason="invoice voided in Stripe", by="stripe:evt_void")
        await handle.signal(DunningWorkflow.stop_signal, stop)
        result = await handle.result()

    assert (result.status, result.outcome, result.attempts) == (
        CaseStatus.STOPPED,
        Outcome.STOPPED,
        0,
    )
    assert stripe_control.charge_count(case.invoice) == 1
    (outcome,) = ledger_rows(ledger, CaseOutcome, case.invoice)
    assert outcome.outcome == "stopped"


async def test_a_late_failure_event_for_a_settled_invoice_charges_nothing(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid
) -> None:
    uncollectible = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.invoices.mark_uncollectible(uncollectible.invoice)
    canceled = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.subscriptions.cancel(canceled.subscription)
    async with run_worker(time_env.client) as task_queue:
        results = [
            await (await start_case(time_env.client, c.dunning_input(), task_queue)).result()
            for c in (uncollectible, canceled)
        ]

    assert [r.outcome for r in results] == [Outcome.MARKED_UNCOLLECTIBLE, Outcome.STOPPED]
    for c in (uncollectible, canceled):
        assert stripe_control.charge_count(c.invoice) == 1
        assert sent_keys(sendgrid, c.invoice) == []


async def test_steps_overdue_after_an_outage_make_one_charge_and_one_email(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    # The failure event arrives eight days late: steps 1-3 (days 1, 3, 7) are all overdue.
    now = await time_env.get_current_time()
    late = case.dunning_input(failed_at=now - timedelta(days=8))
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, late, task_queue)
        # The step's email is its last activity: stop the case only once it went out.
        state = await advance_until(
            time_env, handle, lambda s: "reminder" in s.notifications_sent, step=timedelta(0)
        )
        await handle.terminate("test done")

    assert state.attempts == 1
    assert stripe_control.charge_count(case.invoice) == 2
    assert sent_keys(sendgrid, case.invoice) == ["step:3"]


async def test_the_outcome_is_recorded_while_the_confirmation_email_cannot_go_out(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, email="sendgrid-outage@example.com")
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1)
        sendgrid.fault(503, count=10_000, to_contains="sendgrid-outage")
        paid = PaymentSucceededInput(amount_paid=1200)
        await handle.signal(DunningWorkflow.payment_succeeded, paid)
        # The worker shares this event loop: read the database off it.
        rows = await eventually(
            lambda: asyncio.to_thread(ledger_rows, ledger, CaseOutcome, case.invoice),
            what="the outcome row while SendGrid is down",
        )
        await handle.terminate("test done")
    assert rows[0].outcome == "recovered"
    assert sent_keys(sendgrid, case.invoice) == []
