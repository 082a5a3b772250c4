"""Start a dunning case, or reach a running one, the way every entry point does it.

`start_case` is the only way a case starts: the webhook router, the API, the CLI, the demo,
the benchmarks and the tests all call it, so tests exercise what production runs.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from models.dunning import DunningInput, DunningResult, PaymentFailedInput
from workflows import search_attributes as sa
from workflows.dunning import DunningWorkflow
from workflows.presentation import case_summary

__all__ = [
    "case_handle",
    "failure_signal",
    "initial_search_attributes",
    "start_case",
    "started_new_run",
]


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


def failure_signal(input: DunningInput) -> PaymentFailedInput:
    """The `payment_failed` signal that the event which opened `input` stands for."""
    return PaymentFailedInput(
        stripe_event_id=input.stripe_event_id,
        decline_code=input.decline_code,
        advice_code=input.advice_code,
        failure_message=input.failure_message,
    )


def _details(input: DunningInput) -> str:
    details = (
        f"Dunning case for Stripe invoice `{input.invoice_id}`"
        f" (customer `{input.customer_id}`, policy `{input.policy or 'default'}`)"
    )
    if input.stripe_event_id:
        details += f", opened by Stripe event `{input.stripe_event_id}` (invoice.payment_failed)"
    return details + "."


async def start_case(
    client: Client,
    input: DunningInput,
    task_queue: str,
    signal: PaymentFailedInput | None = None,
) -> WorkflowHandle[DunningWorkflow, DunningResult]:
    """Signal-with-start `dunning-{invoice}` with `payment_failed`; returns the case's handle.

    A running case gets the signal (no second run); none running starts one. A case that
    completed (recovered, stopped, canceled...) is never reopened: a late or resent failure
    event would charge again, so Temporal raises WorkflowAlreadyStartedError. A run that
    failed, was terminated or timed out does not block a new case for the invoice.
    `started_new_run(handle)` tells a start from a signal.
    """
    return await client.start_workflow(
        DunningWorkflow.run,
        input,
        id=sa.workflow_id_for(input.invoice_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        start_signal="payment_failed",
        start_signal_args=[signal or failure_signal(input)],
        search_attributes=initial_search_attributes(input),
        static_summary=case_summary(
            input.invoice_id, input.customer_id, input.amount_due, input.currency
        ),
        static_details=_details(input),
    )


def started_new_run(handle: WorkflowHandle[Any, Any]) -> bool:
    """True if `start_case` started a run, False if it signalled the running one.

    The server says so in the response's `started` (Temporal >= 1.25). Not from
    `first_execution_run_id`: signal-with-start fills it in both cases. The SDK keeps the
    response on the handle without a public accessor, hence the getattr.
    """
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", False))


def case_handle(client: Client, invoice_id: str) -> WorkflowHandle[DunningWorkflow, DunningResult]:
    return client.get_workflow_handle_for(DunningWorkflow.run, sa.workflow_id_for(invoice_id))
