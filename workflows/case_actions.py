"""What a dunning case does through activities: charge, email, final action, bookkeeping."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.ledger import LedgerActivities
    from activities.stripe_billing import StripeActivities
    from models.activities import FinalActionInput, RetryPaymentInput, SendEmailInput
    from models.dunning import Outcome
    from policies import engine
    from policies.engine import Trigger
    from policies.schema import DeclineClass
    from workflows.case_state import CaseBase

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


class CaseActions(CaseBase):
    async def _charge(self, trigger: Trigger, step: int | None) -> None:
        attempt = self.case.attempts + 1
        self.charging = True
        try:
            result = await workflow.execute_activity_method(
                StripeActivities.retry_payment,
                RetryPaymentInput(
                    invoice_id=self.input.invoice_id,
                    attempt=attempt,
                    trigger=trigger,
                    step=step,
                    payment_method=self.retry_payment_method,
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
            await self._recovered(
                result.amount_paid or self._amount(), f"attempt {attempt}", recorded=True
            )
        elif result.outcome == "declined":
            assert self.policy is not None
            self._note_decline(result.decline_code, result.advice_code)
            self.history.append(
                f"attempt {attempt} ({trigger.value}): declined `{result.decline_code}`"
            )
        else:
            self.history.append(f"attempt {attempt}: {result.message}")

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
        # From here on support actions and Stripe's stop events are refused: the outcome is
        # the final action's, not a stop racing it.
        self.finalizing = True
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

    async def _recovered(self, amount: int, how: str, recorded: bool) -> None:
        """`recorded`: the charge activity already wrote the outcome; otherwise the
        confirmation email's activity writes it, so closing costs no extra activity."""
        self.amount_recovered = amount
        self._close(Outcome.RECOVERED)
        self.history.append(f"recovered by {how}")
        closes_with = None if recorded else Outcome.RECOVERED
        await self._email("recovered", "recovered", closes_with=closes_with)

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
