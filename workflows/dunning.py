"""DunningWorkflow: one durable case per failed invoice, interpreting the pure policy engine."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.ledger import LedgerActivities
    from activities.stripe_billing import StripeActivities
    from models.activities import (
        FinalActionInput,
        InvoiceContextInput,
        InvoiceContextResult,
        RecordSupportActionInput,
        RetryPaymentInput,
        SendEmailInput,
    )
    from models.dunning import (
        CaseStatus,
        DunningInput,
        DunningResult,
        DunningState,
        GraceGrant,
        Outcome,
        PaymentActionRequiredInput,
        PaymentFailedInput,
        PaymentMethodUpdatedInput,
        PaymentSucceededInput,
        StopInput,
    )
    from policies import engine
    from policies.engine import ActionKind, Trigger
    from policies.schema import DeclineClass, Policy
    from workflows import search_attributes as sa
    from workflows.presentation import describe_action, details_markdown, when
    from workflows.support import SupportMixin

# Stripe calls retry with backoff for hours (same idempotency key each time); a card decline
# is a result, so only outages and rate limits are retried here.
STRIPE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)
)
STRIPE_DEADLINE = timedelta(hours=6)
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)
)
EMAIL_DEADLINE = timedelta(hours=24)
CALL_TIMEOUT = timedelta(seconds=60)
TERMINAL_OUTCOME_STATUS = {
    Outcome.RECOVERED: CaseStatus.RECOVERED,
    Outcome.ALREADY_PAID: CaseStatus.RECOVERED,
    Outcome.VOIDED: CaseStatus.STOPPED,
    Outcome.STOPPED: CaseStatus.STOPPED,
    Outcome.SUBSCRIPTION_CANCELED: CaseStatus.CANCELED,
    Outcome.MARKED_UNCOLLECTIBLE: CaseStatus.CANCELED,
    Outcome.LEFT_PAST_DUE: CaseStatus.CANCELED,
}


@workflow.defn(name="DunningWorkflow")
class DunningWorkflow(SupportMixin):
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
        self.stop_request: StopInput | None = None
        self.external_payment: PaymentSucceededInput | None = None
        self.charging = False
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
                await self._recovered(amount, "payment reported by Stripe")
                break
            if self.stop_request is not None:
                break  # the stop handler already closed the case and queued its record
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

    async def _charge(self, trigger: Trigger, step: int | None) -> None:
        attempt = self.case.attempts + 1
        self.charging = True
        try:
            result = await workflow.execute_activity_method(
                StripeActivities.retry_payment,
                RetryPaymentInput(
                    invoice_id=self.input.invoice_id, attempt=attempt, trigger=trigger, step=step
                ),
                summary=f"Charge attempt {attempt} ({trigger.value})",
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=STRIPE_DEADLINE,
                retry_policy=STRIPE_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("Charge attempt %s failed: %s", attempt, err.cause or err)
            self.history.append(f"attempt {attempt} ({trigger.value}): error, see history")
            return
        finally:
            self.charging = False
        if result.outcome in ("succeeded", "already_paid"):
            self.recovered_step = step
            await self._recovered(result.amount_paid or self._amount(), f"attempt {attempt}")
        elif result.outcome == "declined":
            assert self.policy is not None
            self._note_decline(result.decline_code, result.advice_code)
            self.history.append(
                f"attempt {attempt} ({trigger.value}): declined `{result.decline_code}`"
            )
        else:
            self.history.append(f"attempt {attempt}: {result.message}")

    def _note_decline(self, decline_code: str | None, advice_code: str | None) -> None:
        assert self.policy is not None
        self.last_decline_code, self.last_advice_code = decline_code, advice_code
        decline = engine.classify_decline(self.policy, decline_code, advice_code)
        self.case = engine.after_decline(self.case, decline)

    async def _ask_customer(self) -> None:
        decline = self.case.decline_class
        template = (
            "authentication_needed" if decline == DeclineClass.AUTHENTICATION else "payment_failed"
        )
        await self._email(template, f"ask:{decline.value}:{self.case.attempts}", level="friendly")
        self.case = engine.after_customer_asked(self.case)
        self.history.append(f"asked the customer ({decline.value})")

    async def _final_action(self) -> None:
        assert self.policy is not None
        result = await workflow.execute_activity_method(
            StripeActivities.apply_final_action,
            FinalActionInput(
                invoice_id=self.input.invoice_id,
                subscription_id=self._subscription_id(),
                action=self.policy.final.action,
                attempts=self.case.attempts,
                grace_days=self.case.grace_days,
            ),
            summary=f"Final action: {self.policy.final.action}",
            start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=STRIPE_DEADLINE,
            retry_policy=STRIPE_RETRY,
        )
        self.case = engine.after_final_action(self.case)
        self._close(result.outcome)
        self.history.append(f"final action: {result.detail}")
        if result.outcome == Outcome.SUBSCRIPTION_CANCELED:
            await self._email("canceled", "final", level="final")

    async def _recovered(self, amount: int, how: str) -> None:
        self.amount_recovered = amount
        self._close(Outcome.RECOVERED)
        self.history.append(f"recovered by {how}")
        await self._email("recovered", "recovered", closes_with=Outcome.RECOVERED)

    async def _email(
        self,
        template: str,
        key: str,
        step: int | None = None,
        level: str | None = None,
        closes_with: Outcome | None = None,
    ) -> None:
        assert self.context is not None and self.policy is not None
        action_needed = {
            DeclineClass.NEW_PAYMENT_METHOD: "update_payment_method",
            DeclineClass.AUTHENTICATION: "authenticate",
        }.get(self.case.decline_class)
        try:
            result = await workflow.execute_activity_method(
                EmailActivities.send_email,
                SendEmailInput(
                    invoice_id=self.input.invoice_id,
                    dedupe_key=f"dunning-{self.input.invoice_id}:{key}",
                    template=template,
                    level=level,
                    step=step,
                    to_email=self.context.customer_email,
                    customer_id=self.input.customer_id,
                    customer_name=self.context.customer_name,
                    locale=self.context.locale,
                    amount_due=self._amount(),
                    currency=self.input.currency,
                    hosted_invoice_url=self.context.hosted_invoice_url,
                    action_needed=action_needed if not self.case.closed else None,  # type: ignore[arg-type]
                    final_deadline=engine.final_deadline(self.policy, self.case),
                    final_action=self.policy.final.action,
                    attempts=self.case.attempts,
                    closes_with=closes_with,
                    amount_recovered=self.amount_recovered,
                ),
                summary=f"Email: {template}",
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=EMAIL_DEADLINE,
                retry_policy=EMAIL_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("Email %s not sent: %s", template, err.cause or err)
            return
        if result.status == "sent":
            self.notifications.append(template)

    async def _flush_records(self) -> None:
        while self.pending_records:
            record = self.pending_records.pop(0)
            await workflow.execute_activity_method(
                LedgerActivities.record_support_action,
                record,
                summary=f"Record support action: {record.action} by {record.via}",
                start_to_close_timeout=timedelta(seconds=30),
            )

    def _close(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.case = engine.close(self.case)
        self.revision += 1

    def _amount(self) -> int:
        if self.context is not None:
            return self.context.amount_remaining or self.input.amount_due
        return self.input.amount_due

    def _subscription_id(self) -> str | None:
        return self.input.subscription_id or (
            self.context.subscription_id if self.context else None
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
        if self.case.closed or self.case.pending_retry is not None:
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

    def _publish(self, action: engine.NextAction | None) -> None:
        state = self.snapshot(action)
        attributes: dict[SearchAttributeKey[Any], Any] = {
            sa.DUNNING_STATUS: state.status.value,
            sa.DUNNING_STEP: state.current_step,
            sa.DECLINE_CODE: state.last_decline_code or "",
            sa.NEXT_ACTION_AT: state.next_action_at,
            sa.CUSTOMER_ID: self.input.customer_id,
            sa.INVOICE_ID: self.input.invoice_id,
            sa.SUBSCRIPTION_ID: self._subscription_id() or "",
            sa.AMOUNT_DUE: self.input.amount_due,
            sa.CURRENCY: self.input.currency.upper(),
        }
        updates = [
            key.value_set(value) if value not in (None, "") else key.value_unset()
            for key, value in attributes.items()
            if self.published.get(key.name) != value
        ]
        if updates:
            workflow.upsert_search_attributes(updates)  # type: ignore[arg-type]
            self.published.update({key.name: value for key, value in attributes.items()})
        workflow.set_current_details(details_markdown(state, self.history))
