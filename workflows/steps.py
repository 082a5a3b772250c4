"""How the workflow carries out each action the engine asks for: charge, step, ask, final action.

Every outcome decided here goes into the case record; the activities only report what Stripe
and SendGrid said. No failure of a provider ends the case FAILED: it is classified, written in
the case's history, and either skipped (a charge, an email) or the case's `error` outcome.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.dunning import Outcome
    from policies import engine
    from policies.engine import Trigger
    from policies.schema import DeclineClass
    from workflows.calls import CaseCalls, failure_reason
    from workflows.case import Case

# A saved Stripe 5xx is retried under new key generations, waiting longer each time.
KEY_GENERATIONS = 5
GENERATION_BACKOFF = timedelta(minutes=1)
# Outcomes that mean Stripe was asked to charge, so the attempt counts against the cap.
ASKED = ("succeeded", "declined", "not_payable")
ASK_TEMPLATE = {DeclineClass.AUTHENTICATION: "authentication_needed"}
ASKED_FOR = {
    DeclineClass.NEW_PAYMENT_METHOD: "a new card",
    DeclineClass.AUTHENTICATION: "authentication of the payment",
    DeclineClass.SOFT: "payment",
}


class CaseSteps:
    def __init__(self, case: Case, calls: CaseCalls) -> None:
        self.case = case
        self.calls = calls

    def _interrupted(self) -> bool:
        """Paid, stopped or paused since the action began: its remaining effects are skipped."""
        case = self.case
        return (
            case.closed
            or case.external_payment is not None
            or case.schedule.paused_since is not None
        )

    async def charge(
        self, trigger: Trigger, step: int | None, payment_method: str | None = None
    ) -> bool:
        """One charge attempt; True when Stripe was asked (the attempt counts)."""
        case = self.case
        attempt = case.schedule.attempts + 1
        card = payment_method or case.payment_method
        case.busy, case.card_since_charge = "charging", False
        try:
            for generation in range(1, KEY_GENERATIONS + 1):
                result = await self.calls.charge(attempt, trigger, step, card, generation)
                if result.outcome != "provider_error" or self._interrupted():
                    break
                case.log(f"attempt {attempt}: Stripe error ({result.message}), nothing charged")
                await workflow.sleep(
                    GENERATION_BACKOFF * 2 ** (generation - 1),
                    summary=f"Back off before charge attempt {attempt} under a new key",
                )
        except ActivityError as err:
            case.log(f"attempt {attempt} ({trigger.value}): not made, {failure_reason(err)}")
            return False
        finally:
            case.busy = None
        if card and card not in case.tried_payment_methods:
            case.tried_payment_methods.append(card)
        if result.outcome in ("succeeded", "already_paid"):
            case.recovered(result.amount_paid, f"charge attempt {attempt}", step)
        elif result.outcome == "declined":
            case.note_decline(result.decline_code, result.advice_code)
            case.log(
                f"attempt {attempt} ({trigger.value}): charge attempted, declined"
                f" `{result.decline_code}`"
            )
        else:
            case.log(f"attempt {attempt} ({trigger.value}): {result.outcome}, {result.message}")
        if not case.closed and case.card_since_charge:
            # A card came in while this charge ran: it gets a charge of its own.
            case.request_retry(Trigger.PAYMENT_METHOD_UPDATED)
        return result.outcome in ASKED

    async def retry_now(self, trigger: Trigger) -> None:
        charged = await self.charge(trigger, None)
        self.case.set_schedule(engine.after_retry_now(self.case.schedule, charged, workflow.now()))

    async def run_step(self, action: engine.NextAction) -> None:
        case, policy = self.case, self.case.policy
        assert policy is not None and action.step_index is not None
        index = action.step_index
        if action.skipped_steps:
            case.log(
                f"steps {index + 1 - action.skipped_steps}-{index}: overdue, folded into"
                f" step {index + 1}"
            )
        charged = await self.charge(Trigger.SCHEDULE, index + 1) if action.charge else False
        case.set_schedule(engine.after_step(case.schedule, index, charged, workflow.now()))
        step = policy.steps[index]
        if not step.template:
            return
        if self._interrupted():
            case.log(f"step {index + 1}: {step.template} email not sent (case paid or paused)")
            return
        await self.email(step.template, f"step:{index + 1}", step=index + 1, level=step.level)

    async def ask_customer(self) -> None:
        decline = self.case.schedule.decline_class
        template = ASK_TEMPLATE.get(decline, "payment_failed")
        await self.email(
            template, f"ask:{decline.value}:{self.case.schedule.attempts}", level="friendly"
        )
        self.case.set_schedule(engine.after_customer_asked(self.case.schedule))

    async def email(
        self, template: str, key: str, step: int | None = None, level: str | None = None
    ) -> None:
        try:
            result = await self.calls.email(template, key, step, level)
        except ActivityError as err:
            self.case.log(f"{template} email not sent: {failure_reason(err)}")
            return
        if result.status == "sent":
            self.case.notifications.append(template)
        if template in ("payment_failed", "authentication_needed") and result.status == "sent":
            what = ASKED_FOR.get(self.case.schedule.decline_class, "payment")
            self.case.log(f"asked the customer for {what} by email ({template})")
        else:
            self.case.log(f"{template} email {result.status}")

    async def final_action(self) -> None:
        """The last look first: paid or voided meanwhile ends the case so, and a card the
        customer set as default that the case never charged gets its charge before anything
        is canceled (its webhook may have been lost)."""
        case = self.case
        case.busy = "finalizing"
        try:
            check = await self.calls.check_invoice()
            card = check.default_payment_method
            if check.invoice_status == "open" and case.untried_card(card):
                case.busy = None
                charged = await self.charge(Trigger.LAST_LOOK, None, payment_method=card)
                case.set_schedule(engine.after_retry_now(case.schedule, charged, workflow.now()))
                case.busy = "finalizing"
            if case.closed or case.external_payment is not None:
                return
            if check.invoice_status == "paid":
                case.recovered(check.amount_paid, "invoice found paid at the final action")
                return
            result = await self.calls.final_action()
        except ActivityError as err:
            case.close(Outcome.ERROR, f"final action failed: {failure_reason(err)}")
            return
        finally:
            case.busy = None
        if case.external_payment is not None and result.outcome != Outcome.RECOVERED:
            # The payment arrived while the action ran: the customer paid, that outcome wins.
            case.log(f"paid while the final action ran ({result.detail})")
            return
        if result.outcome == Outcome.RECOVERED:
            case.recovered(result.amount_paid, result.detail)
        else:
            case.close(result.outcome, result.detail)
