"""PreDunningWorkflow: one card that expires before its subscription renews.

Reads top-down: the run loop, then the handlers. It warns the customer at once, reminds them a
few days before the renewal, and ends when the card is updated (a webhook's `card_updated`
signal, or the renewal check seeing a new card), when the renewal is paid, or when Stripe
attempts the renewal and it fails anyway (the dunning case opened by invoice.payment_failed
takes over from there). The ledger's predunning_cases row records how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.predunning import (
        CARD_UPDATED_SIGNAL,
        PREDUNNING_WORKFLOW,
        RENEWED_SIGNAL,
        CardUpdatedInput,
        ExpiringCard,
        PreDunningInput,
        PreDunningMessageInput,
        PreDunningMessageResult,
        PreDunningResult,
        PreDunningState,
        PreDunningStatus,
        RecordPreDunningInput,
        RenewalCheckInput,
        RenewalCheckResult,
        RenewedInput,
    )
    from workflows.call_options import EMAIL_CALL, LEDGER_CALL, STRIPE_CALL

# Stripe had not attempted the renewal yet: look again this often, for this long, then close.
RECHECK_EVERY = timedelta(hours=1)
RECHECK_FOR = timedelta(hours=24)


@dataclass
class Warning:
    """Everything the workflow knows; once `status` leaves warned, every wait ends."""

    card: ExpiringCard
    reminder_at: datetime | None
    status: PreDunningStatus = PreDunningStatus.WARNED
    messages: list[str] = field(default_factory=list)
    ended_by: str | None = None

    @property
    def ended(self) -> bool:
        return self.status != PreDunningStatus.WARNED

    def end(self, status: PreDunningStatus, by: str) -> None:
        if not self.ended:
            self.status, self.ended_by = status, by


@workflow.defn(name=PREDUNNING_WORKFLOW)
class PreDunningWorkflow:
    @workflow.init
    def __init__(self, input: PreDunningInput) -> None:
        card = input.card
        reminder_at = card.renews_at - timedelta(days=input.reminder_days)
        # Renewing within the reminder window already: the warning is the reminder.
        self.warning = Warning(card, reminder_at if reminder_at > workflow.now() else None)

    @workflow.run
    async def run(self, input: PreDunningInput) -> PreDunningResult:
        warning = self.warning
        await self._record(PreDunningStatus.WARNED)
        if not warning.ended:
            await self._send("warning")
        if warning.reminder_at is not None:
            await self._wait_until(warning.reminder_at, "Wait to send the reminder")
            if not warning.ended:
                await self._send("reminder")
        settled = warning.card.renews_at + timedelta(hours=input.settle_hours)
        await self._wait_until(settled, "Wait for the renewal to be attempted")
        give_up = settled + RECHECK_FOR
        while not warning.ended:
            check = await self._check_renewal()
            if check.status is not None:
                warning.end(check.status, check.detail)
            elif workflow.now() >= give_up:
                # No renewal in Stripe a day after it was due (canceled, paused, or moved):
                # the warning did not lead to a paid renewal.
                warning.end(PreDunningStatus.FAILED_ANYWAY, f"no renewal seen: {check.detail}")
            else:
                await self._wait_until(workflow.now() + RECHECK_EVERY, "Look at the renewal again")
        await self._record(warning.status)
        return PreDunningResult(
            status=warning.status, messages=list(warning.messages), ended_by=warning.ended_by
        )

    async def _wait_until(self, at: datetime, summary: str) -> None:
        """A durable timer that also wakes when a signal ends the warning."""
        timeout = at - workflow.now()
        if timeout <= timedelta(0) or self.warning.ended:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.warning.ended,
                timeout=timeout,
                timeout_summary=f"{summary} at {at:%Y-%m-%d %H:%M} UTC",
            )

    async def _send(self, message: Literal["warning", "reminder"]) -> None:
        workflow_id = workflow.info().workflow_id
        try:
            result = await workflow.execute_activity(
                "send_predunning_email",
                PreDunningMessageInput(
                    workflow_id=workflow_id, message=message, card=self.warning.card
                ),
                result_type=PreDunningMessageResult,
                summary=f"Email: card expiry {message}",
                **EMAIL_CALL,
            )
        except ActivityError:
            # SendGrid refused for a day: the warning goes on to the renewal without it.
            self.warning.messages.append(f"{message}: failed")
            return
        if result.status == "card_updated":
            self.warning.end(PreDunningStatus.CARD_UPDATED, result.detail or "card updated")
            return
        self.warning.messages.append(f"{message}: {result.status}")

    async def _check_renewal(self) -> RenewalCheckResult:
        try:
            result: RenewalCheckResult = await workflow.execute_activity(
                "check_renewal",
                RenewalCheckInput(card=self.warning.card),
                result_type=RenewalCheckResult,
                summary="Read the renewal and the default card from Stripe",
                **STRIPE_CALL,
            )
        except ActivityError as err:
            # Stripe unreachable for hours: looked at again within the give-up window.
            return RenewalCheckResult(status=None, detail=f"Stripe not read: {err.message}")
        return result

    async def _record(self, status: PreDunningStatus) -> None:
        await workflow.execute_activity(
            "record_predunning",
            RecordPreDunningInput(
                workflow_id=workflow.info().workflow_id,
                card=self.warning.card,
                status=status,
                at=workflow.now(),
            ),
            summary=f"Ledger: {status.value.replace('_', ' ')}",
            **LEDGER_CALL,
        )

    @workflow.signal(name=CARD_UPDATED_SIGNAL)
    def card_updated(self, input: CardUpdatedInput) -> None:
        self.warning.end(PreDunningStatus.CARD_UPDATED, f"stripe:{input.stripe_event_id}")

    @workflow.signal(name=RENEWED_SIGNAL)
    def renewed(self, input: RenewedInput) -> None:
        self.warning.end(PreDunningStatus.RENEWED, f"stripe:{input.stripe_event_id}")

    @workflow.query
    def status(self) -> PreDunningState:
        warning = self.warning
        return PreDunningState(
            workflow_id=workflow.info().workflow_id,
            status=warning.status,
            renews_at=warning.card.renews_at,
            reminder_at=warning.reminder_at,
            messages=list(warning.messages),
            ended_by=warning.ended_by,
        )
