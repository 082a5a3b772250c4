"""CardExpiryScanWorkflow: the daily scan (Temporal Schedule `dunning-card-expiry-scan`).

Pages through Stripe's active subscriptions one activity at a time and starts one
PreDunningWorkflow per card that expires before its renewal. The child's id names the card and
its expiry, and a duplicate id is rejected whether that workflow runs or has ended, so a second
scan (or a retried one) never warns twice about the same card.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from models.predunning import (
        SCAN_WORKFLOW,
        ExpiringCard,
        PreDunningInput,
        ScanInput,
        ScanPage,
        ScanPageInput,
        ScanResult,
    )
    from workflows.call_options import STRIPE_DEADLINE, STRIPE_RETRY
    from workflows.predunning import PreDunningWorkflow
    from workflows.search_attributes import CUSTOMER_ID, SUBSCRIPTION_ID

# One page reads up to SCAN_PAGE subscriptions and their cards; it heartbeats per subscription.
SCAN_CALL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(minutes=1),
    "schedule_to_close_timeout": STRIPE_DEADLINE,
    "retry_policy": STRIPE_RETRY,
}


@workflow.defn(name=SCAN_WORKFLOW)
class CardExpiryScanWorkflow:
    @workflow.init
    def __init__(self, input: ScanInput) -> None:
        self.totals = input.carried or ScanResult()

    @workflow.run
    async def run(self, input: ScanInput) -> ScanResult:
        cursor = input.starting_after
        while True:
            page: ScanPage = await workflow.execute_activity(
                "scan_expiring_cards",
                ScanPageInput(horizon_days=input.horizon_days, starting_after=cursor),
                result_type=ScanPage,
                summary="Read active subscriptions and their cards from Stripe",
                **SCAN_CALL,
            )
            self.totals.subscriptions_read += page.subscriptions_read
            self.totals.skipped_renewed += page.skipped_renewed
            for card in page.cards:
                await self._start(card, input.reminder_days)
            if page.next_cursor is None:
                return self.totals
            cursor = page.next_cursor
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(update={"starting_after": cursor, "carried": self.totals})
                )

    async def _start(self, card: ExpiringCard, reminder_days: int) -> None:
        self.totals.cards_found += 1
        try:
            await workflow.start_child_workflow(
                PreDunningWorkflow.run,
                PreDunningInput(card=card, reminder_days=reminder_days),
                id=card.workflow_id,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # The warning outlives the scan that found it.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(CUSTOMER_ID, card.customer_id),
                        SearchAttributePair(SUBSCRIPTION_ID, card.subscription_id),
                    ]
                ),
                static_summary=f"Card expiring {card.exp_month:02d}/{card.exp_year}",
            )
        except WorkflowAlreadyStartedError:
            self.totals.already_running_or_done += 1
            return
        self.totals.started += 1
