"""The state a dunning case carries and how it is shown: query snapshot, search attributes,
Markdown details. Shared by the workflow's control loop, its activities and its handlers.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from models.activities import InvoiceContextResult, RecordSupportActionInput
    from models.dunning import (
        CaseStatus,
        DunningInput,
        DunningState,
        GraceGrant,
        Outcome,
        PaymentSucceededInput,
    )
    from policies import engine
    from policies.schema import Policy
    from workflows import search_attributes as sa
    from workflows.presentation import describe_action, details_markdown

TERMINAL_OUTCOME_STATUS = {
    Outcome.RECOVERED: CaseStatus.RECOVERED,
    Outcome.ALREADY_PAID: CaseStatus.RECOVERED,
    Outcome.VOIDED: CaseStatus.STOPPED,
    Outcome.STOPPED: CaseStatus.STOPPED,
    Outcome.SUBSCRIPTION_CANCELED: CaseStatus.CANCELED,
    Outcome.MARKED_UNCOLLECTIBLE: CaseStatus.CANCELED,
    Outcome.LEFT_PAST_DUE: CaseStatus.CANCELED,
}


class CaseBase:
    """Attributes are set in DunningWorkflow.__init__."""

    input: DunningInput
    policy: Policy | None
    context: InvoiceContextResult | None
    case: engine.CaseState
    outcome: Outcome | None
    grace: list[GraceGrant]
    paused_reason: str | None
    last_decline_code: str | None
    last_advice_code: str | None
    notifications: list[str]
    history: list[str]
    pending_records: list[RecordSupportActionInput]
    external_payment: PaymentSucceededInput | None
    charging: bool
    finalizing: bool
    retry_payment_method: str | None
    recovered_step: int | None
    amount_recovered: int
    revision: int
    published: dict[str, object]

    def status_value(self) -> CaseStatus:
        if self.outcome is not None:
            return TERMINAL_OUTCOME_STATUS[self.outcome]
        return CaseStatus.PAUSED if self.case.paused_since else CaseStatus.ACTIVE

    def snapshot(self, action: engine.NextAction | None = None) -> DunningState:
        policy = self.policy
        if policy is not None and action is None:
            action = engine.next_action(policy, self.case, workflow.now())
        open_case = action is not None and action.kind != engine.ActionKind.CLOSED
        return DunningState(
            invoice_id=self.input.invoice_id,
            customer_id=self.input.customer_id,
            status=self.status_value(),
            outcome=self.outcome,
            policy=policy.name if policy else (self.input.policy or "default"),
            current_step=self.case.steps_done,
            total_steps=len(policy.steps) if policy else 0,
            attempts=self.case.attempts,
            max_attempts=policy.max_attempts if policy else 0,
            next_action=describe_action(policy, action)
            if policy and action and open_case
            else None,
            next_action_at=action.at if action and open_case else None,
            final_action=policy.final.action if policy else "",
            final_deadline=engine.final_deadline(policy, self.case, workflow.now())
            if policy
            else None,
            grace=list(self.grace),
            grace_days_total=self.case.grace_days,
            last_decline_code=self.last_decline_code,
            last_advice_code=self.last_advice_code,
            decline_class=self.case.decline_class.value,
            notifications_sent=list(self.notifications),
            paused_reason=self.paused_reason,
        )

    def _note_decline(self, decline_code: str | None, advice_code: str | None) -> None:
        assert self.policy is not None
        self.last_decline_code, self.last_advice_code = decline_code, advice_code
        decline = engine.classify_decline(self.policy, decline_code, advice_code)
        self.case = engine.after_decline(self.case, decline)

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
