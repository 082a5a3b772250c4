"""Races with a charge in flight (issue 7 §1.6, §1.9): the stand-in holds the charge a few
seconds while a signal or update arrives, then answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.dunning import (
    CaseStatus,
    Outcome,
    PauseInput,
    PaymentMethodUpdatedInput,
    PaymentSucceededInput,
)
from models.ledger import Attempt
from starter.cases import start_case
from tests.deadline import eventually
from tests.standin_control import FailedInvoice, StripeControl
from tests.workflows.helpers import EXPIRED, INSUFFICIENT, advance_until, ledger_rows, sent_keys
from workflows.dunning import DunningWorkflow


def attach(control: StripeControl, customer: str, token: str) -> str:
    return control.sdk.v1.payment_methods.attach(token, params={"customer": customer}).id


def hold_next_charge(control: StripeControl, invoice: str) -> None:
    """The next charge of `invoice` waits 5 s at the stand-in before it executes (the workers
    here wait 20 s for Stripe's answer, so it is one slow call, not a timeout and a retry)."""
    control.fault("delay", count=1, path_contains=f"{invoice}/pay", hang_seconds=5)


async def charge_in_flight(control: StripeControl, invoice: str) -> None:
    async def pending() -> bool:
        requests = await asyncio.to_thread(control.requests)
        return any(r["path"].endswith(f"{invoice}/pay") and r["status"] is None for r in requests)

    await eventually(pending, within=60, what="a charge in flight")


@contextlib.asynccontextmanager
async def step_two_charging(
    env: WorkflowEnvironment, control: StripeControl, case: FailedInvoice, task_queue: str
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """A case whose step-2 charge (day 3) is in flight while the body runs. Time skips to
    day 3 and no further: the server's sleep returns once the workflow is idle again, so it
    runs beside the body while the held charge runs in real time, as in production."""
    handle = await start_case(env.client, case.dunning_input(), task_queue)
    await advance_until(env, handle, lambda s: s.attempts == 1)
    hold_next_charge(control, case.invoice)
    sleeping = asyncio.ensure_future(env.sleep(timedelta(days=2, hours=1)))
    await charge_in_flight(control, case.invoice)
    yield handle
    await sleeping


async def test_a_card_given_while_a_charge_runs_gets_its_own_charge(
    time_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    case = stripe_control.failed_invoice(EXPIRED)
    declining = attach(stripe_control, case.customer, "pm_card_chargeDeclinedExpiredCard")
    async with run_worker(time_env.client, stripe_timeout_seconds=20) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        hold_next_charge(stripe_control, case.invoice)
        await handle.signal(
            DunningWorkflow.payment_method_updated,
            PaymentMethodUpdatedInput(payment_method_id=declining),
        )
        await charge_in_flight(stripe_control, case.invoice)
        good = attach(stripe_control, case.customer, "pm_card_visa")
        await handle.signal(
            DunningWorkflow.payment_method_updated,
            PaymentMethodUpdatedInput(payment_method_id=good),
        )
        result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.RECOVERED, Outcome.RECOVERED)
    assert stripe_control.sdk.v1.invoices.retrieve(case.invoice).status == "paid"


async def test_no_step_email_after_a_pause_accepted_during_its_charge(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client, stripe_timeout_seconds=20) as task_queue:
        async with step_two_charging(time_env, stripe_control, case, task_queue) as handle:
            pause = PauseInput(reason="customer called", by="dana")
            await handle.execute_update(DunningWorkflow.pause, pause)
        state = await advance_until(time_env, handle, lambda s: s.attempts == 2, step=timedelta(0))
        await handle.terminate("test done")

    assert state.status == CaseStatus.PAUSED and state.current_step == 2
    assert "step:2" not in sent_keys(sendgrid, case.invoice)


async def test_no_reminder_after_a_payment_reported_during_the_charge(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(time_env.client, stripe_timeout_seconds=20) as task_queue:
        async with step_two_charging(time_env, stripe_control, case, task_queue) as handle:
            paid = PaymentSucceededInput(amount_paid=1200)
            await handle.signal(DunningWorkflow.payment_succeeded, paid)
        await advance_until(time_env, handle, lambda s: s.outcome is not None, step=timedelta(0))
        result = await handle.result()

    assert result.outcome == Outcome.RECOVERED
    assert sent_keys(sendgrid, case.invoice) == ["recovered"]


async def test_a_late_event_for_the_card_that_failed_charges_it_no_more(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    # Stripe's events come in any order: the failed card's payment_method.attached may arrive
    # after invoice.payment_failed has opened the case.
    case = stripe_control.failed_invoice(INSUFFICIENT)
    failed = stripe_control.charges(case.invoice)["attempts"][0]["payment_method"]
    async with run_worker(time_env.client) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        late = PaymentMethodUpdatedInput(payment_method_id=failed)
        await handle.signal(DunningWorkflow.payment_method_updated, late)
        # A card the case never tried, in the same order, is charged at once.
        good = attach(stripe_control, case.customer, "pm_card_visa")
        await handle.signal(
            DunningWorkflow.payment_method_updated,
            PaymentMethodUpdatedInput(payment_method_id=good),
        )
        result = await handle.result()

    assert result.outcome == Outcome.RECOVERED
    attempts = ledger_rows(ledger, Attempt, case.invoice)
    assert [(a.trigger, a.outcome) for a in attempts] == [("payment_method_updated", "succeeded")]
    charged = [c["payment_method"] for c in stripe_control.charges(case.invoice)["attempts"]]
    assert charged == [failed, good]  # Stripe's own attempt, then the new card only
