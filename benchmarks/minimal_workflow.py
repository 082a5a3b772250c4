"""The baseline for benchmarks/cases.py: the same schedule and activities, nothing else.

No ledger writes (a no-op ledger), no search attributes, no current details, no summaries,
no support handlers: what a bare-bones dunning loop costs on the same machine. It sends the
messages the DunningWorkflow sends: each step's, the ask for a new card at once after a
decline that needs one, and the closing email (recovered, or canceled).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.stripe_billing import StripeActivities
    from models.activities import (
        FinalActionInput,
        InvoiceContextInput,
        RetryPaymentInput,
        SendEmailInput,
    )
    from models.dunning import DunningInput


class NullLedger:
    """Accepts every write and remembers nothing (the baseline has no ledger)."""

    def __getattr__(self, name: str) -> Any:
        if name == "claim":  # a fresh claim of a row nobody keeps
            return lambda **_: (True, SimpleNamespace(status="claimed", provider_message_id=None))
        if name == "get":  # as the opening's preferences: none are kept
            return lambda *_: None
        return lambda *args, **kwargs: True


OPTIONS: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=60)}


async def pause_until(moment: datetime) -> None:
    """Sleep until `moment`; a step already due (a real server, a slow call) runs at once, as
    a negative timer is an error."""
    wait = moment - workflow.now()
    if wait > timedelta(0):
        await workflow.sleep(wait)


@workflow.defn(name="MinimalDunningWorkflow")
class MinimalDunningWorkflow:
    @workflow.run
    async def run(self, input: DunningInput) -> str:
        context = await workflow.execute_activity_method(
            StripeActivities.get_invoice_context,
            InvoiceContextInput(
                invoice_id=input.invoice_id,
                customer_id=input.customer_id,
                amount_due=input.amount_due,
                currency=input.currency,
                decline_code=input.decline_code,
                workflow_id=workflow.info().workflow_id,
                opened_at=workflow.now(),
            ),
            **OPTIONS,
        )
        policy, started, attempts = context.policy, workflow.now(), 0
        hard = input.decline_code in policy.declines.new_payment_method
        email = Emailer(input, context.customer_email)
        if hard:  # the customer is asked for a new card at once
            await email.send("payment_failed", "ask")
        for index, step in enumerate(policy.steps):
            await pause_until(started + step.offset)
            if step.retry and not hard and attempts < policy.max_attempts:
                attempts += 1
                result = await workflow.execute_activity_method(
                    StripeActivities.retry_payment,
                    RetryPaymentInput(
                        invoice_id=input.invoice_id, attempt=attempts, trigger="schedule"
                    ),
                    **OPTIONS,
                )
                if result.outcome == "succeeded":
                    await email.send("recovered", "recovered")
                    return "recovered"
            if step.template:
                await email.send(step.template, str(index))
        await pause_until(started + policy.final.after)
        await workflow.execute_activity_method(
            StripeActivities.apply_final_action,
            FinalActionInput(
                invoice_id=input.invoice_id,
                subscription_id=context.subscription_id,
                action=policy.final.action,
                attempts=attempts,
                grace_days=0,
            ),
            **OPTIONS,
        )
        await email.send("canceled", "final")
        return "canceled"


class Emailer:
    def __init__(self, input: DunningInput, to_email: str | None) -> None:
        self.input, self.to_email = input, to_email

    async def send(self, template: Any, key: str) -> None:
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            SendEmailInput(
                invoice_id=self.input.invoice_id,
                dedupe_key=f"min-{self.input.invoice_id}:{key}",
                template=template,
                to_email=self.to_email,
                customer_id=self.input.customer_id,
                amount_due=self.input.amount_due,
                currency=self.input.currency,
            ),
            **OPTIONS,
        )
