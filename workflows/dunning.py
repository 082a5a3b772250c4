"""DunningWorkflow: one durable case per failed invoice, interpreting the pure policy engine.

Reads top-down: the run loop, then every handler. The case's state is one record (`Case`);
activities are called through `CaseCalls`, and each engine action is carried out by `CaseSteps`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.dunning import (
        ChannelOptOutInput,
        DunningInput,
        DunningResult,
        DunningState,
        GrantGraceInput,
        GrantGraceResult,
        Outcome,
        PauseInput,
        PauseResult,
        PaymentActionRequiredInput,
        PaymentFailedInput,
        PaymentMethodUpdatedInput,
        PaymentSucceededInput,
        ResumeInput,
        ResumeResult,
        RetryNowInput,
        RetryNowResult,
        StopInput,
        StopResult,
    )
    from policies.engine import ActionKind, NextAction
    from workflows.calls import CaseCalls, failure_reason
    from workflows.case import Case
    from workflows.closing import finish
    from workflows.customer import CustomerActions
    from workflows.customer_updates import CustomerUpdates
    from workflows.paydays import payday_zone
    from workflows.presentation import describe_action, when
    from workflows.steps import CaseSteps
    from workflows.support import SupportActions
    from workflows.visibility import Publisher

SKIP_TRIED_CARDS = "skip-tried-cards"  # before it, a tried card's late event charged it again


# No sandbox (README, Benchmarks): ruff's banned APIs and the replay tests guard determinism.
@workflow.defn(name="DunningWorkflow", sandboxed=False)
class DunningWorkflow(CustomerUpdates):
    @workflow.init
    def __init__(self, input: DunningInput) -> None:
        self.case = Case.start(input, workflow.now())
        self.calls = CaseCalls(self.case)
        self.steps = CaseSteps(self.case, self.calls)
        self.publisher = Publisher()
        self.support = SupportActions(self.case)
        # The payment page's Updates (customer_*, declared in CustomerUpdates).
        self.customer = CustomerActions(self.case, self.steps, self.support.records)

    @workflow.run
    async def run(self, input: DunningInput) -> DunningResult:
        case = self.case
        bookkeeping = asyncio.create_task(self.support.bookkeeping(self.calls))
        announcer = asyncio.create_task(self.steps.announce_loop())
        try:
            case.opened(await self.calls.open())
            case.payday_zone = payday_zone(case)
            if not case.closed:
                self.steps.announce("dunning.case.opened", "opened")
        except ActivityError as err:
            case.close(Outcome.ERROR, f"could not open the case: {failure_reason(err)}")
        await self._loop()
        assert case.outcome is not None
        self.publisher.publish(case, workflow.now(), None)
        await finish(case, self.calls, self.steps)
        await workflow.wait_condition(
            lambda: (
                not self.support.records
                and not case.reach.pending
                and workflow.all_handlers_finished()
            )
        )
        bookkeeping.cancel()
        announcer.cancel()
        self.publisher.publish(case, workflow.now(), None)
        return DunningResult(
            invoice_id=input.invoice_id,
            status=case.status,
            outcome=case.outcome,
            attempts=case.schedule.attempts,
            notifications_sent=len(case.notifications),
            grace_days=case.schedule.grace_days,
            amount_recovered=case.amount_recovered,
            currency=input.currency,
            recovered_step=case.recovered_step,
            reason=case.outcome_reason,
        )

    async def _loop(self) -> None:
        case = self.case
        while not case.closed:
            if case.external_payment is not None:
                paid = case.external_payment.amount_paid or case.amount()
                case.recovered(paid, "payment reported by Stripe")
                break
            if self.customer.cancel_requested:
                await self.steps.final_action(last_look=False)
                break
            now = workflow.now()
            action = case.next_action(now)
            assert action is not None
            self.publisher.publish(case, now, action)
            if action.kind == ActionKind.CLOSED:
                break
            if action.kind == ActionKind.WAIT_FOR_RESUME or not action.due(now):
                await self._wait(action)
            elif action.kind == ActionKind.RETRY_NOW:
                assert action.trigger is not None
                await self.steps.retry_now(action.trigger)
            elif action.kind == ActionKind.ASK_CUSTOMER:
                await self.steps.ask_customer()
            elif action.kind == ActionKind.RUN_STEP:
                await self.steps.run_step(action)
            else:
                await self.steps.final_action()

    async def _wait(self, action: NextAction) -> None:
        assert self.case.policy is not None
        seen = self.case.revision
        timeout = max(action.at - workflow.now(), timedelta(seconds=1)) if action.at else None
        summary = f"Wait for {describe_action(self.case.policy, action)} at {when(action.at)}"
        # A durable timer that any signal or update wakes (every transition bumps revision).
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.case.revision != seen, timeout=timeout, timeout_summary=summary
            )

    # Stripe-driven signals: they change the case; the loop above does the work.

    @workflow.signal(
        name="payment_succeeded",
        description="Stripe reports the invoice paid: end the case as recovered and confirm.",
    )
    def payment_succeeded(self, input: PaymentSucceededInput) -> None:
        self.case.stripe_paid(input)

    @workflow.signal(
        name="payment_failed",
        description=(
            "Stripe reports a failed payment (also our own retry): updates the last decline"
            " only; never adds an attempt."
        ),
    )
    def payment_failed(self, input: PaymentFailedInput) -> None:
        if not self.case.closed and (input.decline_code or input.advice_code):
            self.case.note_decline(input.decline_code, input.advice_code)

    @workflow.signal(
        name="payment_method_updated",
        description="The customer updated their payment method: charge the new card now.",
    )
    def payment_method_updated(self, input: PaymentMethodUpdatedInput) -> None:
        case, card = self.case, input.payment_method_id
        if case.closed:
            return
        # Stripe's events come out of order: the failed card's `payment_method.attached` can
        # follow the failure; charging it again only adds a decline (the schedule still retries).
        if card in case.tried_payment_methods and workflow.patched(SKIP_TRIED_CARDS):
            case.log("a card already declined on this invoice came in again: not charged now")
        else:
            case.new_card(card)

    @workflow.signal(
        name="payment_action_required",
        description="Stripe needs the customer to authenticate: send the payment link.",
    )
    def payment_action_required(self, input: PaymentActionRequiredInput) -> None:
        if not self.case.closed:
            self.case.action_required()

    @workflow.signal(
        name="channel_opt_out",
        description="The customer opted out of a channel (SMS STOP) or back in: skip or use it.",
    )
    def channel_opt_out(self, input: ChannelOptOutInput) -> None:
        self.steps.channel_opt_out(input.channel, input.opted_out, input.source)

    @workflow.query(
        name="status",
        description="Current state: status, step, attempts, next action, deadline, grace, emails.",
    )
    def status(self) -> DunningState:
        return self.case.snapshot(workflow.now())

    # Support actions: each an Update (validated before it enters history, with an answer)
    # and a Signal of the same name for the Temporal UI (invalid ones logged and ignored).

    def _signal(self, check: Callable[[], None], apply: Callable[[], str], name: str) -> None:
        try:
            check()
        except ValueError as err:
            workflow.logger.warning("Ignored %s signal: %s", name, err)
            return
        apply()

    @workflow.update(
        name="grant_grace",
        description="Grant grace days {days, reason, by}: moves the schedule and final action.",
    )
    def grant_grace(self, input: GrantGraceInput) -> GrantGraceResult:
        message = self.support.grant_grace(input)
        state = self.status()
        return GrantGraceResult(
            action="grant_grace",
            message=message,
            state=state,
            new_final_deadline=state.final_deadline,
        )

    @grant_grace.validator
    def _validate_grant_grace(self, input: GrantGraceInput) -> None:
        self.case.check_grace(input.days, input.reason, input.by)

    @workflow.update(name="pause", description="Pause {reason, by}: no charges or emails.")
    def pause(self, input: PauseInput) -> PauseResult:
        return PauseResult(action="pause", message=self.support.pause(input), state=self.status())

    @pause.validator
    def _validate_pause(self, input: PauseInput) -> None:
        self.case.check_pause(input.reason, input.by)

    @workflow.update(name="resume", description="Resume {by}; deadlines move by the paused time.")
    def resume(self, input: ResumeInput) -> ResumeResult:
        return ResumeResult(
            action="resume", message=self.support.resume(input), state=self.status()
        )

    @resume.validator
    def _validate_resume(self, input: ResumeInput) -> None:
        self.case.check_resume(input.by)

    @workflow.update(name="retry_now", description="Retry the charge now {by}.")
    def retry_now(self, input: RetryNowInput) -> RetryNowResult:
        return RetryNowResult(
            action="retry_now", message=self.support.retry_now(input), state=self.status()
        )

    @retry_now.validator
    def _validate_retry_now(self, input: RetryNowInput) -> None:
        self.case.check_retry_now(input.by)

    @workflow.update(name="stop", description="Stop dunning {reason, by}: nothing more is done.")
    def stop(self, input: StopInput) -> StopResult:
        return StopResult(action="stop", message=self.support.stop(input), state=self.status())

    @stop.validator
    def _validate_stop(self, input: StopInput) -> None:
        self.case.check_stop(input.reason, input.by)

    @workflow.signal(name="grant_grace", description='As the update: {"days", "reason", "by"}.')
    def grant_grace_signal(self, input: GrantGraceInput) -> None:
        check = lambda: self.case.check_grace(input.days, input.reason, input.by)  # noqa: E731
        self._signal(check, lambda: self.support.grant_grace(input), "grant_grace")

    @workflow.signal(name="pause", description='As the update: {"reason", "by"}.')
    def pause_signal(self, input: PauseInput) -> None:
        check = lambda: self.case.check_pause(input.reason, input.by)  # noqa: E731
        self._signal(check, lambda: self.support.pause(input), "pause")

    @workflow.signal(name="resume", description='As the update: {"by"}.')
    def resume_signal(self, input: ResumeInput) -> None:
        check = lambda: self.case.check_resume(input.by)  # noqa: E731
        self._signal(check, lambda: self.support.resume(input), "resume")

    @workflow.signal(name="retry_now", description='As the update: {"by"}.')
    def retry_now_signal(self, input: RetryNowInput) -> None:
        check = lambda: self.case.check_retry_now(input.by)  # noqa: E731
        self._signal(check, lambda: self.support.retry_now(input), "retry_now")

    @workflow.signal(name="stop", description='As the update: {"reason", "by"}.')
    def stop_signal(self, input: StopInput) -> None:
        check = lambda: self.case.check_stop(input.reason, input.by)  # noqa: E731
        self._signal(check, lambda: self.support.stop(input), "stop")
