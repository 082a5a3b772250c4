"""How the workflow carries out each action the engine asks for: charge, step, ask, final action.

Every outcome decided here goes into the case record; the activities only report what Stripe
and the channels said. No failure of a provider ends the case FAILED: it is classified, written in
the case's history, and either skipped (a charge, an email) or the case's `error` outcome.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.activities import REACHED, CaseEvent, InvoiceContextResult
    from models.dunning import Outcome
    from policies import engine
    from policies.engine import Trigger
    from policies.quiet_hours import next_send_at
    from policies.schema import EMAIL_ONLY, Channel, DeclineClass, Notify
    from workflows.calls import CaseCalls, failure_reason
    from workflows.case import Case
    from workflows.channels import FINAL_OUTCOMES, HARD_DECLINES_FOR_SUPPORT, Announcement
    from workflows.final_action import final_action

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


def preferred(channels: tuple[Channel, ...], context: InvoiceContextResult | None) -> list[Channel]:
    """The step's channels the customer prefers, in their order; all of the step's when they
    prefer none of them (a preference never silences a message)."""
    liked = context.preferred_channels if context is not None else []
    chosen = [c for c in liked if c in channels]
    return chosen or list(channels)


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
            if case.schedule.decline_class != DeclineClass.SOFT:
                case.reach.hard_declines += 1
                if case.reach.hard_declines == HARD_DECLINES_FOR_SUPPORT:
                    self.announce("dunning.case.needs_support", "needs_support:hard_declines",
                                  reason_code="repeated_hard_declines")  # fmt: skip
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
        step, notify = policy.steps[index], policy.steps[index].channels
        reached: tuple[Channel, ...] = ()
        if step.template and notify is not None and self._interrupted():
            what = "email" if notify == EMAIL_ONLY else "message"
            case.log(f"step {index + 1}: {step.template} {what} not sent (case paid or paused)")
        elif step.template and notify is not None and await self.waking_hours(step.template):
            reached = await self.notify(
                step.template, f"step:{index + 1}", notify, step=index + 1, level=step.level
            )
        self.announce("dunning.case.step", f"step:{index + 1}", step=index + 1, reached=reached)

    async def ask_customer(self) -> None:
        decline = self.case.schedule.decline_class
        template = ASK_TEMPLATE.get(decline, "payment_failed")
        if await self.waking_hours(template):
            await self.email(
                template, f"ask:{decline.value}:{self.case.schedule.attempts}", level="friendly"
            )
        self.case.set_schedule(engine.after_customer_asked(self.case.schedule))

    async def waking_hours(self, template: str) -> bool:
        """Wait out the customer's night; False when the message should not go (held for
        support, or the case was paid, paused or asked to charge meanwhile)."""
        case, now = self.case, workflow.now()
        if case.reach.held_until is not None and now < case.reach.held_until:
            case.log(f"{template} not sent: the customer asked for a person, support answers")
            return False
        if case.policy is None or case.policy.quiet_hours is None:
            return True
        zone = case.context.timezone if case.context else None
        at = next_send_at(now, case.policy.quiet_hours, zone)
        if at <= now:
            return True
        case.log(f"{template} held for the customer's quiet hours until {at:%Y-%m-%d %H:%M} UTC")
        # A charge asked for meanwhile (a new card, "pay now") must not wait for the morning:
        # it runs, and this message is dropped (the customer is already acting).
        try:
            await workflow.wait_condition(
                lambda: self._interrupted() or case.schedule.pending_retry is not None,
                timeout=at - now,
                timeout_summary=f"Quiet hours: hold {template} until {at:%H:%M} UTC",
            )
        except TimeoutError:
            return not self._interrupted()
        case.log(f"{template} not sent: the case was paid, paused or charged meanwhile")
        return False

    async def notify(
        self,
        template: str,
        key: str,
        notify: Notify = EMAIL_ONLY,
        step: int | None = None,
        level: str | None = None,
    ) -> tuple[Channel, ...]:
        """The message on the step's channels, in order: every one (`all`) or up to the first
        that reaches the customer (`first`). Returns the channels that reached them."""
        reached: list[Channel] = []
        context = self.case.context
        for channel in preferred(notify.channels, context):
            if channel in self.case.reach.opted_out or (
                context is not None and channel in context.opted_out_channels
            ):
                self.case.log(f"{template} {channel} skipped: the customer opted out")
                continue
            if channel == "sms" and context is not None and not context.phone:
                # Known when the case opened: no activity (and no history) for a text that
                # cannot go anywhere.
                self.case.log(f"{template} sms skipped: no phone number on file")
                continue
            if await self.send(channel, template, key, step, level):
                reached.append(channel)
                if notify.mode == "first":
                    break
        return tuple(reached)

    async def email(
        self, template: str, key: str, step: int | None = None, level: str | None = None
    ) -> None:
        await self.send("email", template, key, step, level)

    async def send(
        self, channel: Channel, template: str, key: str, step: int | None, level: str | None
    ) -> bool:
        """One channel; True when the message reached (or may have reached) the customer."""
        what = "email" if channel == "email" else f"{channel} message"
        try:
            result = await self.calls.notify(channel, template, key, step, level)
        except ActivityError as err:
            self.case.log(f"{template} {what} not sent: {failure_reason(err)}")
            return False
        if result.status == "sent":
            self.case.notifications.append(
                template if channel == "email" else f"{template}:{channel}"
            )
        if template in ("payment_failed", "authentication_needed") and result.status == "sent":
            how = "email" if channel == "email" else channel
            asked = ASKED_FOR.get(self.case.schedule.decline_class, "payment")
            self.case.log(f"asked the customer for {asked} by {how} ({template})")
        else:
            detail = f" ({result.detail})" if result.detail and channel != "email" else ""
            self.case.log(f"{template} {what} {result.status}{detail}")
        return result.status in REACHED

    def channel_opt_out(self, channel: str, opted_out: bool, source: str | None) -> None:
        case, reach, how = self.case, self.case.reach, source or "the customer"
        if opted_out and channel not in reach.opted_out and not case.closed:
            reach.opted_out.append(channel)
            case.log(f"{channel} opted out ({how}): no more {channel} messages")
            key = f"needs_support:opt_out:{channel}:{len(case.history)}"
            self.announce("dunning.case.needs_support", key, reason_code=f"{channel}_opt_out")
        elif not opted_out and channel in reach.opted_out:
            reach.opted_out.remove(channel)
            case.log(f"{channel} opted back in ({how})")

    # Case events for the merchant's systems (the webhook channel), sent beside the case.

    def announce(self, event: CaseEvent, key: str, **values: object) -> None:
        context = self.case.context
        channels = context.case_event_channels if context else []
        announcement = Announcement(event, key, at=workflow.now(), **values)  # type: ignore[arg-type]
        self.case.reach.announce(channels, announcement)

    def announce_outcome(self) -> None:
        outcome = self.case.outcome
        if outcome == Outcome.RECOVERED:
            self.announce("dunning.case.recovered", "recovered", outcome=outcome)
        elif outcome in FINAL_OUTCOMES:
            self.announce("dunning.case.final_action", "final_action", outcome=outcome)

    async def announce_loop(self) -> None:
        reach = self.case.reach
        while True:
            await workflow.wait_condition(lambda: bool(reach.pending))
            event = reach.pending[0]
            assert self.case.context is not None
            for channel in self.case.context.case_event_channels:
                try:
                    await self.calls.announce(channel, event)
                except ActivityError as err:
                    # Not logged with case.log: that would wake the case's timer for nothing.
                    self.case.history.append(f"{event.event} not announced: {failure_reason(err)}")
            reach.pending.pop(0)

    async def final_action(self, last_look: bool = True) -> None:
        """The last look, then the action (workflows/final_action.py)."""
        await final_action(self, last_look)
