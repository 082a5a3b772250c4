"""DunningWorkflow: one durable case per failed invoice, interpreting the pure policy engine."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.stripe_billing import StripeActivities
    from models.activities import (
        InvoiceContextInput,
        InvoiceContextResult,
        RecordSupportActionInput,
    )
    from models.dunning import (
        DunningInput,
        DunningResult,
        DunningState,
        GraceGrant,
        Outcome,
        PaymentActionRequiredInput,
        PaymentFailedInput,
        PaymentMethodUpdatedInput,
        PaymentSucceededInput,
    )
    from policies import engine
    from policies.engine import ActionKind, Trigger
    from policies.schema import DeclineClass, Policy
    from workflows.case_actions import CALL_TIMEOUT, STRIPE_DEADLINE, STRIPE_RETRY, CaseActions
    from workflows.presentation import describe_action, when
    from workflows.support import SupportMixin


@workflow.defn(name="DunningWorkflow")
class DunningWorkflow(CaseActions, SupportMixin):
    @workflow.init
    def __init__(self, input: DunningInput) -> None:
        self.input = input
        self.policy: Policy | None = None
        self.context: InvoiceContextResult | None = None
        self.case = engine.CaseState(started_at=input.failed_at or workflow.now())
        self.outcome: Outcome | None = None
        self.grace: list[GraceGrant] = []
        self.paused_reason: str | None = None
        self.last_decline_code = input.decline_code
        self.last_advice_code = input.advice_code
        self.notifications: list[str] = []
        self.history: list[str] = []
        self.pending_records: list[RecordSupportActionInput] = []
        self.external_payment: PaymentSucceededInput | None = None
        self.charging = False
        self.finalizing = False
        self.retry_payment_method: str | None = None
        self.recovered_step: int | None = None
        self.amount_recovered = 0
        self.revision = 0
        self.published: dict[str, object] = {}

    @workflow.run
    async def run(self, input: DunningInput) -> DunningResult:
        self.context = await workflow.execute_activity_method(
            StripeActivities.get_invoice_context,
            InvoiceContextInput(
                invoice_id=input.invoice_id,
                customer_id=input.customer_id,
                subscription_id=input.subscription_id,
                amount_due=input.amount_due,
                currency=input.currency,
                policy=input.policy,
                decline_code=input.decline_code,
                stripe_event_id=input.stripe_event_id,
                workflow_id=workflow.info().workflow_id,
                opened_at=self.case.started_at,
            ),
            summary=f"Read invoice {input.invoice_id} from Stripe",
            start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=STRIPE_DEADLINE,
            retry_policy=STRIPE_RETRY,
        )
        self.policy = self.context.policy
        if self.context.invoice_status in ("paid", "void"):
            paid = self.context.invoice_status == "paid"
            self._close(Outcome.ALREADY_PAID if paid else Outcome.VOIDED)
            self.history.append(f"invoice already {self.context.invoice_status} at start")
        else:
            if not input.decline_code and self.context.decline_code:
                self.last_decline_code = self.context.decline_code
                self.last_advice_code = self.context.advice_code
            decline = engine.classify_decline(
                self.policy, self.last_decline_code, self.last_advice_code
            )
            self.case = engine.after_decline(self.case, decline)
        await self._loop()
        await self._flush_records()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._publish(None)
        assert self.outcome is not None
        return DunningResult(
            invoice_id=input.invoice_id,
            status=self.status_value(),
            outcome=self.outcome,
            attempts=self.case.attempts,
            notifications_sent=len(self.notifications),
            grace_days=self.case.grace_days,
            amount_recovered=self.amount_recovered,
            currency=input.currency,
            recovered_step=self.recovered_step,
        )

    async def _loop(self) -> None:
        assert self.policy is not None
        while not self.case.closed:
            await self._flush_records()
            if self.external_payment is not None:
                amount = self.external_payment.amount_paid or self._amount()
                await self._recovered(amount, "payment reported by Stripe", recorded=False)
                break
            now = workflow.now()
            action = engine.next_action(self.policy, self.case, now)
            self._publish(action)
            if action.kind == ActionKind.CLOSED:
                break
            if action.kind == ActionKind.WAIT_FOR_RESUME or not action.due(now):
                await self._wait(action)
                continue
            await self._perform(action)

    async def _wait(self, action: engine.NextAction) -> None:
        assert self.policy is not None
        seen = self.revision
        timeout = None
        if action.at is not None:
            timeout = max(action.at - workflow.now(), timedelta(seconds=1))
        summary = f"Wait for {describe_action(self.policy, action)} at {when(action.at)}"
        # A durable timer that also wakes on any signal or update (the revision changes).
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.revision != seen, timeout=timeout, timeout_summary=summary
            )

    async def _perform(self, action: engine.NextAction) -> None:
        assert self.policy is not None
        if action.kind == ActionKind.RETRY_NOW:
            assert action.trigger is not None
            await self._charge(action.trigger, None)
            self.case = engine.after_retry_now(self.case)
        elif action.kind == ActionKind.ASK_CUSTOMER:
            await self._ask_customer()
        elif action.kind == ActionKind.RUN_STEP:
            assert action.step_index is not None
            await self._run_step(action.step_index, action.charge)
        elif action.kind == ActionKind.FINAL_ACTION:
            await self._final_action()

    async def _run_step(self, index: int, charge: bool) -> None:
        assert self.policy is not None
        step = self.policy.steps[index]
        if charge:
            await self._charge(Trigger.SCHEDULE, index + 1)
        self.case = engine.after_step(self.case, charged=charge)
        if self.case.closed:
            return
        if step.template:
            await self._email(step.template, f"step:{index + 1}", step=index + 1, level=step.level)
        self.history.append(
            f"step {index + 1}: {'charged' if charge else 'no retry'}"
            + (f", {step.template} email" if step.template else "")
        )

    # Stripe-driven signals: they change state; the loop above does the work.

    @workflow.signal(
        name="payment_succeeded",
        description=(
            "Stripe reports the invoice paid: end the case as recovered and confirm to the"
            " customer."
        ),
    )
    def payment_succeeded(self, input: PaymentSucceededInput) -> None:
        if not self.case.closed and self.external_payment is None:
            self.external_payment = input
            self.revision += 1

    @workflow.signal(
        name="payment_failed",
        description=(
            "Stripe reports a failed payment (also our own retry): updates the last decline"
            " only; never adds an attempt."
        ),
    )
    def payment_failed(self, input: PaymentFailedInput) -> None:
        if self.case.closed or self.policy is None:
            return
        if input.decline_code or input.advice_code:
            self._note_decline(input.decline_code, input.advice_code)
            self.revision += 1

    @workflow.signal(
        name="payment_method_updated",
        description="The customer updated their payment method: retry the charge now.",
    )
    def payment_method_updated(self, input: PaymentMethodUpdatedInput) -> None:
        if self.case.closed:
            return
        if input.payment_method_id:
            # Charge the card the customer just gave us, even if it is not (yet) their default.
            self.retry_payment_method = input.payment_method_id
        if self.case.pending_retry is not None:
            return
        self.case = engine.request_retry(self.case, Trigger.PAYMENT_METHOD_UPDATED)
        self.history.append("payment method updated by the customer")
        self.revision += 1

    @workflow.signal(
        name="payment_action_required",
        description="Stripe needs the customer to authenticate: send the payment link.",
    )
    def payment_action_required(self, input: PaymentActionRequiredInput) -> None:
        if self.case.closed:
            return
        self.case = replace(
            self.case, decline_class=DeclineClass.AUTHENTICATION, customer_notice_due=True
        )
        self.revision += 1

    @workflow.query(
        name="status",
        description=(
            "Current state: status, step, attempts, next action, final deadline, grace,"
            " last decline, emails sent."
        ),
    )
    def status(self) -> DunningState:
        return self.snapshot()
