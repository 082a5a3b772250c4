"""What the customer can do from the payment page, as the case's Updates.

Each Update has a validator: a refused action (the case closed, a limit reached) leaves no
event in history and its message is the page's answer. The Update id is the page's request
id, so a form submitted twice is one action (Temporal answers the repeat with the first
result). Accepted actions are recorded in the ledger (`customer_actions`) by the bookkeeping
loop that records support actions, and written in the case's details. The Temporal
interface (names, descriptions) is declared in workflows/customer_updates.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.activities import (
        PauseSubscriptionInput,
        PauseSubscriptionResult,
        RecordCustomerActionInput,
    )
    from models.customer_actions import (
        MAX_CONTACT_MESSAGE,
        CustomerActionResult,
        CustomerCancelInput,
        CustomerContactInput,
        CustomerMoreTimeInput,
        CustomerNewCardInput,
        CustomerPauseInput,
        CustomerPayNowInput,
    )
    from models.dunning import Outcome
    from policies.engine import Trigger, grace_problem
    from workflows.call_options import STRIPE_CALL
    from workflows.calls import failure_reason
    from workflows.case import Case, need_text

if TYPE_CHECKING:
    from workflows.steps import CaseSteps

BY = "customer"


class CustomerActions:
    def __init__(self, case: Case, steps: CaseSteps, records: list[Any]) -> None:
        self.case = case
        self.steps = steps
        self.records = records
        # Set by "Cancel": the run loop carries out the final action at once.
        self.cancel_requested = False

    # Handlers.

    def new_card(self, input: CustomerNewCardInput) -> CustomerActionResult:
        self.case.new_card(input.payment_method_id)
        return self._done("new_card", "we are charging your new card now", input.payment_method_id)

    def pay_now(self, input: CustomerPayNowInput) -> CustomerActionResult:
        self.case.request_retry(Trigger.CUSTOMER)
        return self._done("pay_now", "we are charging your card now")

    def more_time(self, input: CustomerMoreTimeInput) -> CustomerActionResult:
        case = self.case
        days = (input.until - self._next_charge_day()).days
        case.grant_grace(days, "asked for more time on the payment page", BY, workflow.now())
        return self._done("more_time", f"we will try again on {input.until.isoformat()}",
                          input.until.isoformat())  # fmt: skip

    async def pause_subscription(self, input: CustomerPauseInput) -> CustomerActionResult:
        case, policy = self.case, self.case.policy
        assert policy is not None
        subscription = case.subscription_id()
        assert subscription is not None
        resumes_at = workflow.now() + policy.self_service.pause_for
        # Paused first, so the run loop neither charges nor messages while Stripe is asked.
        case.pause("the customer is pausing the subscription", workflow.now())
        case.busy = "finalizing"
        try:
            result: PauseSubscriptionResult = await workflow.execute_activity(
                "pause_subscription",
                PauseSubscriptionInput(
                    invoice_id=case.input.invoice_id,
                    subscription_id=subscription,
                    resumes_at=resumes_at,
                ),
                result_type=PauseSubscriptionResult,
                summary="Pause the subscription (the customer asked)",
                **STRIPE_CALL,
            )
        except ActivityError as err:
            case.busy = None
            case.resume(workflow.now())
            case.log(f"the customer's pause failed: {failure_reason(err)}")
            raise ApplicationError(
                "the subscription could not be paused; nothing changed", type="PauseFailed"
            ) from None
        case.busy = None
        until = (result.resumes_at or resumes_at).date().isoformat()
        case.close(Outcome.PAUSED_BY_CUSTOMER, f"subscription paused until {until}")
        return self._done("pause_subscription", f"your subscription is paused until {until}")

    async def cancel(self, input: CustomerCancelInput) -> CustomerActionResult:
        self.cancel_requested = True
        self.case.log("the customer asked to cancel")
        await workflow.wait_condition(lambda: self.case.closed)
        words = self.case.closing_words()
        return self._done("cancel", f"done: {words}")

    def contact(self, input: CustomerContactInput) -> CustomerActionResult:
        case, policy = self.case, self.case.policy
        assert policy is not None
        until = workflow.now() + policy.self_service.contact_holds_messages
        case.reach.held_until = max(case.reach.held_until or until, until)
        # The message itself goes to the ledger only: the details are not encrypted.
        self.steps.announce(
            "dunning.case.needs_support",
            f"needs_support:contact:{len(case.history)}",
            reason_code="customer_contact",
        )
        return self._done("contact", "our team will reply soon", input.message)

    def _done(self, action: str, message: str, detail: str | None = None) -> CustomerActionResult:
        info = workflow.current_update_info()
        self.records.append(
            RecordCustomerActionInput(
                invoice_id=self.case.input.invoice_id,
                request_id=info.id if info else f"{workflow.info().run_id}:{action}",
                action=action,
                detail=detail,
                result=message,
                at=workflow.now(),
            )
        )
        self.case.log(f"{action.replace('_', ' ')} by the customer (payment page): {message}")
        return CustomerActionResult(
            action=action, message=message, state=self.case.snapshot(workflow.now())
        )

    def _next_charge_day(self) -> date:
        action = self.case.next_action(workflow.now())
        at: datetime = (action.at if action and action.at else None) or workflow.now()
        return max(at, workflow.now()).date()

    # Validators: they raise ValueError with the page's answer, and change nothing.

    def check_new_card(self, input: CustomerNewCardInput) -> None:
        self.case.check_open()
        if input.payment_method_id in self.case.tried_payment_methods:
            raise ValueError("this card was already tried; please use another card")

    def check_pay_now(self, input: CustomerPayNowInput) -> None:
        self.case.check_retry_now(BY)

    def check_more_time(self, input: CustomerMoreTimeInput) -> None:
        case, policy = self.case, self.case.policy
        case.check_open()
        assert policy is not None
        limit = policy.self_service.more_time_days
        if limit == 0:
            raise ValueError("more time cannot be asked for on this plan")
        if any(grant.by == BY for grant in case.grace):
            raise ValueError("more time was already given once for this payment")
        first = self._next_charge_day()
        last = first + timedelta(days=limit)
        if not first < input.until <= last:
            raise ValueError(
                f"pick a date after {first.isoformat()} and no later than {last.isoformat()}"
            )
        problem = grace_problem(policy, case.schedule, (input.until - first).days)
        if problem:
            raise ValueError(problem)

    def check_pause(self, input: CustomerPauseInput) -> None:
        case = self.case
        case.check_open()
        assert case.policy is not None
        if not case.policy.self_service.allow_pause:
            raise ValueError("pausing is not available for this plan")
        if case.subscription_id() is None:
            raise ValueError("there is no subscription to pause")
        if case.busy is not None:
            raise ValueError("a payment is being processed; try again in a minute")

    def check_cancel(self, input: CustomerCancelInput) -> None:
        self.case.check_open()
        if self.case.busy is not None or self.cancel_requested:
            raise ValueError("a payment is being processed; try again in a minute")

    def check_contact(self, input: CustomerContactInput) -> None:
        self.case.check_open()
        need_text(input.message, "message", MAX_CONTACT_MESSAGE)
