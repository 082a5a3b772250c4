"""Start a dunning case, or reach a running one, the way every entry point does it."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from models.dunning import DunningInput, DunningResult
from workflows import search_attributes as sa
from workflows.dunning import DunningWorkflow
from workflows.presentation import case_summary

__all__ = ["case_handle", "initial_search_attributes", "start_case"]


def initial_search_attributes(input: DunningInput) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.DUNNING_STATUS, "active"),
        SearchAttributePair(sa.DUNNING_STEP, 0),
        SearchAttributePair(sa.CUSTOMER_ID, input.customer_id),
        SearchAttributePair(sa.INVOICE_ID, input.invoice_id),
        SearchAttributePair(sa.AMOUNT_DUE, input.amount_due),
        SearchAttributePair(sa.CURRENCY, input.currency.upper()),
    ]
    if input.subscription_id:
        pairs.append(SearchAttributePair(sa.SUBSCRIPTION_ID, input.subscription_id))
    if input.decline_code:
        pairs.append(SearchAttributePair(sa.DECLINE_CODE, input.decline_code))
    return TypedSearchAttributes(pairs)


async def start_case(
    client: Client, input: DunningInput, task_queue: str
) -> WorkflowHandle[DunningWorkflow, DunningResult]:
    """Start `dunning-{invoice}`; if that case already runs, return it instead (no restart)."""
    return await client.start_workflow(
        DunningWorkflow.run,
        input,
        id=sa.workflow_id_for(input.invoice_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=initial_search_attributes(input),
        static_summary=case_summary(
            input.invoice_id, input.customer_id, input.amount_due, input.currency
        ),
        static_details=f"Dunning case for Stripe invoice `{input.invoice_id}`"
        f" (customer `{input.customer_id}`, policy `{input.policy or 'default'}`).",
    )


def case_handle(client: Client, invoice_id: str) -> WorkflowHandle[DunningWorkflow, DunningResult]:
    return client.get_workflow_handle_for(DunningWorkflow.run, sa.workflow_id_for(invoice_id))
