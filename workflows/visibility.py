"""What ops see of a running case: typed search attributes and Markdown current details."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from policies import engine
    from workflows import search_attributes as sa
    from workflows.case import Case
    from workflows.presentation import details_markdown


class Publisher:
    """Upserts only the attributes that changed: each upsert is a history event."""

    def __init__(self) -> None:
        # What the start request already set (see starter.cases) needs no upsert.
        self.published: dict[str, object] = {
            pair.key.name: pair.value for pair in workflow.info().typed_search_attributes
        }

    def publish(self, case: Case, now: datetime, action: engine.NextAction | None) -> None:
        state = case.snapshot(now, action)
        attributes: dict[SearchAttributeKey[Any], Any] = {
            sa.DUNNING_STATUS: state.status.value,
            sa.DUNNING_STEP: state.current_step,
            sa.DECLINE_CODE: state.last_decline_code or "",
            sa.NEXT_ACTION_AT: state.next_action_at,
            sa.CUSTOMER_ID: case.input.customer_id,
            sa.INVOICE_ID: case.input.invoice_id,
            sa.SUBSCRIPTION_ID: case.subscription_id() or "",
            sa.AMOUNT_DUE: case.input.amount_due,
            sa.CURRENCY: case.input.currency.upper(),
        }
        context = case.context
        if context is not None and context.segment:
            # Only for cases opened under rules, so earlier histories replay unchanged.
            attributes[sa.DUNNING_SEGMENT] = context.segment
            attributes[sa.DUNNING_POLICY] = context.policy.name
            # In the same upsert: a case without an arm leaves it unset, so no new command.
            attributes[sa.DUNNING_VARIANT] = context.variant
        updates = [
            key.value_set(value) if value not in (None, "") else key.value_unset()
            for key, value in attributes.items()
            if self.published.get(key.name) != value
        ]
        if updates:
            workflow.upsert_search_attributes(updates)  # type: ignore[arg-type]
            self.published.update({key.name: value for key, value in attributes.items()})
        workflow.set_current_details(details_markdown(state, case.history))
