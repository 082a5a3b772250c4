"""Ledger activities for what happens inside the workflow itself: support and customer
actions, and the case's outcome. Every other ledger write happens in the activity that did
the work."""

from __future__ import annotations

from temporalio import activity

from activities.failures import compact_failures
from models.activities import (
    CloseCaseInput,
    CloseCaseResult,
    RecordCustomerActionInput,
    RecordSupportActionInput,
    RecordSupportActionResult,
)
from models.ledger import CustomerAction
from models.store import Ledger, insert_ignore


class LedgerActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn(name="record_support_action")
    @compact_failures
    def record_support_action(self, input: RecordSupportActionInput) -> RecordSupportActionResult:
        recorded = self.ledger.record_support_action(
            invoice_id=input.invoice_id,
            request_id=input.request_id,
            action=input.action,
            by=input.by,
            reason=input.reason,
            days=input.days,
            via=input.via,
            result=input.result,
            at=input.at,
        )
        return RecordSupportActionResult(recorded=recorded)

    @activity.defn(name="record_customer_action")
    @compact_failures
    def record_customer_action(self, input: RecordCustomerActionInput) -> RecordSupportActionResult:
        with self.ledger.sessions.begin() as session:
            recorded = insert_ignore(session, CustomerAction, input.model_dump())
        return RecordSupportActionResult(recorded=recorded)

    @activity.defn(name="close_case")
    @compact_failures
    def close_case(self, input: CloseCaseInput) -> CloseCaseResult:
        """The one writer of a case's outcome, whatever closed it (a charge, Stripe, support,
        the final action, an error), independent of any notification."""
        recorded = self.ledger.record_outcome(
            input.invoice_id,
            input.outcome.value,
            currency=input.currency.lower(),
            attempts=input.attempts,
            amount_recovered=input.amount_recovered,
            recovered_step=input.recovered_step,
            closed_at=input.closed_at,
            reason=input.reason,
            # A case that ended before its first activity finished (Stripe refused the
            # invoice) has no ledger row yet: opened here, so the outcome has a case.
            case={
                "invoice_id": input.invoice_id,
                "workflow_id": input.workflow_id,
                "customer_id": input.customer_id,
                "amount_due": input.amount_due,
                "currency": input.currency.lower(),
                "policy": "unknown",
                "opened_at": input.opened_at,
            },
        )
        return CloseCaseResult(recorded=recorded)
