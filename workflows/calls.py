"""Every activity a case calls, with its timeouts, retries and the summary the UI shows.

Activities are named, not imported: the workflow layer never loads the provider SDKs, and
the names are the contract with the worker (`activity.defn(name=...)` in activities/).

The workflow holds one `CaseCalls` (composition): it reads the case to build each input and
returns the activity's result; deciding what the result means stays in the workflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from models.activities import (
        CloseCaseInput,
        CloseCaseResult,
        FinalActionInput,
        FinalActionResult,
        InvoiceCheckInput,
        InvoiceCheckResult,
        InvoiceContextInput,
        InvoiceContextResult,
        NotificationInput,
        NotificationResult,
        RecordCustomerActionInput,
        RecordSupportActionInput,
        RecordSupportActionResult,
        RetryPaymentInput,
        RetryPaymentResult,
    )
    from policies import engine
    from policies.engine import Trigger
    from policies.schema import Channel, DeclineClass
    from workflows.call_options import EMAIL_CALL, LEDGER_CALL, STRIPE_CALL
    from workflows.case import Case
    from workflows.channels import Announcement
    from workflows.presentation import actor

# How the UI names each channel's activity ("SMS: urgent"); a channel not listed shows its name.
CHANNEL_LABEL = {"email": "Email", "sms": "SMS", "in_app": "In-app", "webhook": "Webhook"}
NEEDED_ACTION = {
    DeclineClass.NEW_PAYMENT_METHOD: "update_payment_method",
    DeclineClass.AUTHENTICATION: "authenticate",
}


def failure_reason(err: ActivityError) -> str:
    """The cause as on-call reads it: the error type and its one-line message."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"[:500]
    return f"{type(cause or err).__name__}: {cause or err}"[:500]


# Reads and bookkeeping run as local activities: one marker instead of three events and a task
# (Temporal's advice for short calls); cases begun before keep regular ones (workflow.patched).
LOCAL_CALLS = "local-reads-and-ledger"
# Customer messages too (idempotent through the ledger's claim). A send whose worker died may
# never run again: the worker's claim sweep settles its claim (models/claim_sweep.py).
LOCAL_SENDS = "local-sends"


async def short_call(name: str, arg: Any, patch: str = LOCAL_CALLS, **options: Any) -> Any:
    """`name` as a local activity in cases started since `patch`, else as before."""
    if not workflow.patched(patch):
        return await workflow.execute_activity(name, arg, **options)
    try:
        return await workflow.execute_local_activity(name, arg, **options)
    except (ApplicationError, ActivityTimeout) as err:
        # A local activity's final failure can arrive unwrapped: callers handle ActivityError.
        raise ActivityError(
            f"{name} failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=name,
            activity_id="",
            retry_state=None,
        ) from err


class CaseCalls:
    def __init__(self, case: Case) -> None:
        self.case = case

    async def open(self) -> InvoiceContextResult:
        case = self.case.input
        return await short_call(
            "get_invoice_context",
            InvoiceContextInput(
                invoice_id=case.invoice_id,
                customer_id=case.customer_id,
                subscription_id=case.subscription_id,
                amount_due=case.amount_due,
                currency=case.currency,
                policy=case.policy,
                decline_code=case.decline_code,
                stripe_event_id=case.stripe_event_id,
                workflow_id=workflow.info().workflow_id,
                opened_at=self.case.schedule.started_at,
            ),
            result_type=InvoiceContextResult,
            summary=f"Read invoice {case.invoice_id} from Stripe",
            **STRIPE_CALL,
        )

    async def charge(
        self,
        attempt: int,
        trigger: Trigger,
        step: int | None,
        payment_method: str | None,
        generation: int,
    ) -> RetryPaymentResult:
        key_note = f", key generation {generation}" if generation > 1 else ""
        card = ", new card" if payment_method else ""
        return await workflow.execute_activity(
            "retry_payment",
            RetryPaymentInput(
                invoice_id=self.case.input.invoice_id,
                attempt=attempt,
                trigger=trigger,
                step=step,
                payment_method=payment_method,
                key_generation=generation,
            ),
            result_type=RetryPaymentResult,
            summary=f"Charge attempt {attempt} ({trigger.value}{card}{key_note})",
            **STRIPE_CALL,
        )

    async def check_invoice(self) -> InvoiceCheckResult:
        return await short_call(
            "check_invoice",
            InvoiceCheckInput(
                invoice_id=self.case.input.invoice_id, customer_id=self.case.input.customer_id
            ),
            result_type=InvoiceCheckResult,
            summary="Last look: invoice status and the customer's default card",
            **STRIPE_CALL,
        )

    async def final_action(self, known_cards: list[str] | None) -> FinalActionResult:
        """`known_cards`: take the last look at the default card (None: act without it)."""
        policy = self.case.policy
        assert policy is not None
        return await workflow.execute_activity(
            "apply_final_action",
            FinalActionInput(
                invoice_id=self.case.input.invoice_id,
                subscription_id=self.case.subscription_id(),
                action=policy.final.action,
                customer_id=self.case.input.customer_id,
                known_cards=known_cards,
            ),
            result_type=FinalActionResult,
            summary=f"Final action: {policy.final.action}",
            **STRIPE_CALL,
        )

    def _next_at(self) -> datetime | None:
        action = self.case.next_action(workflow.now())
        return action.at if action is not None else None

    def _notification(self, channel: Channel, key: str, **values: object) -> NotificationInput:
        case, context, policy = self.case, self.case.context, self.case.policy
        assert context is not None and policy is not None
        return NotificationInput(
            invoice_id=case.input.invoice_id,
            dedupe_key=f"dunning-{case.input.invoice_id}:{key}",
            channel=channel,
            to_email=context.customer_email,
            to_phone=context.phone,
            country=context.country,
            customer_id=case.input.customer_id,
            customer_name=context.customer_name,
            locale=context.locale,
            amount_due=case.amount(),
            currency=case.input.currency,
            hosted_invoice_url=context.hosted_invoice_url,
            action_needed=None if case.closed else NEEDED_ACTION.get(case.schedule.decline_class),
            final_deadline=engine.final_deadline(policy, case.schedule),
            final_action=policy.final.action,
            attempts=case.schedule.attempts,
            timezone=context.timezone,
            variant=context.message_variant,
            plan_name=context.plan_name,
            next_step_at=None if case.closed else self._next_at(),
            **values,  # type: ignore[arg-type]
        )

    async def notify(
        self,
        channel: Channel,
        template: str,
        key: str,
        step: int | None = None,
        level: str | None = None,
    ) -> NotificationResult:
        """The message on one channel: the activity `send_{channel}` (one per channel)."""
        return await short_call(
            f"send_{channel}",
            self._notification(channel, key, template=template, level=level, step=step),
            patch=LOCAL_SENDS,
            result_type=NotificationResult,
            summary=f"{CHANNEL_LABEL.get(channel, channel)}: {template}",
            **EMAIL_CALL,
        )

    async def announce(self, channel: Channel, event: Announcement) -> NotificationResult:
        """A case event for the merchant's systems (ids and codes only). A regular activity:
        a merchant's endpoint keeps no record the claim sweep could settle a claim from."""
        return await workflow.execute_activity(
            f"send_{channel}",
            self._notification(
                channel,
                f"event:{event.key}",
                event=event.event,
                occurred_at=event.at or workflow.now(),
                step=event.step,
                subscription_id=self.case.subscription_id(),
                outcome=event.outcome,
                reason_code=event.reason_code,
                reached=list(event.reached),
            ),
            result_type=NotificationResult,
            summary=f"{CHANNEL_LABEL.get(channel, channel)}: {event.event}",
            **EMAIL_CALL,
        )

    async def record(self, record: RecordSupportActionInput | RecordCustomerActionInput) -> None:
        """A support or payment-page action into the ledger."""
        customer = isinstance(record, RecordCustomerActionInput)
        who = "the customer" if customer else actor(record.by)  # type: ignore[union-attr]
        await short_call(
            "record_customer_action" if customer else "record_support_action",
            record,
            result_type=RecordSupportActionResult,
            summary=f"Record {record.action.replace('_', ' ')} by {who}",
            **LEDGER_CALL,
        )

    async def close_case(self) -> None:
        case = self.case
        assert case.outcome is not None
        await short_call(
            "close_case",
            CloseCaseInput(
                invoice_id=case.input.invoice_id,
                workflow_id=workflow.info().workflow_id,
                customer_id=case.input.customer_id,
                amount_due=case.input.amount_due,
                opened_at=case.schedule.started_at,
                outcome=case.outcome,
                currency=case.input.currency,
                attempts=case.schedule.attempts,
                amount_recovered=case.amount_recovered,
                recovered_step=case.recovered_step,
                closed_at=workflow.now(),
                reason=case.outcome_reason,
            ),
            result_type=CloseCaseResult,
            summary=f"Record the outcome: {case.outcome.value}",
            **LEDGER_CALL,
        )
