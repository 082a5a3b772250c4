"""The final action and the last look before it, for CaseSteps.final_action.

The last look: an invoice paid or voided meanwhile ends the case so, and a card the customer
set as default that the case never charged gets its charge before anything is canceled (its
webhook may have been lost), unless the customer asked to cancel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.activities import FinalActionResult
    from models.dunning import Outcome
    from policies import engine
    from policies.engine import Trigger
    from workflows.calls import failure_reason

if TYPE_CHECKING:
    from workflows.steps import CaseSteps

# Before it, a separate read (`check_invoice`) came first; now `apply_final_action` reads the
# invoice and the default card itself and acts in the same call: one activity fewer, and no
# gap between the look and the act. Cases begun before keep the read (workflow.patched).
LOOK_INSIDE = "final-action-looks-itself"


async def final_action(steps: CaseSteps, last_look: bool) -> None:
    case = steps.case
    case.busy = "finalizing"
    try:
        if workflow.patched(LOOK_INSIDE):
            result = await _look_and_act(steps, last_look)
        else:
            result = await _look_then_act(steps, last_look)
    except ActivityError as err:
        case.close(Outcome.ERROR, f"final action failed: {failure_reason(err)}")
        return
    finally:
        case.busy = None
    if result is None:
        return
    if case.external_payment is not None and result.outcome != Outcome.RECOVERED:
        # The payment arrived while the action ran: the customer paid, that outcome wins.
        case.log(f"paid while the final action ran ({result.detail})")
        return
    if result.outcome == Outcome.RECOVERED:
        case.recovered(result.amount_paid, result.detail)
    else:
        assert result.outcome is not None
        case.close(result.outcome, result.detail)


async def _look_and_act(steps: CaseSteps, last_look: bool) -> FinalActionResult | None:
    case = steps.case
    result = await steps.calls.final_action(case.known_cards() if last_look else None)
    if result.untried_card is None:
        return result
    await _charge(steps, result.untried_card)
    if case.closed or case.external_payment is not None:
        return None
    return await steps.calls.final_action(None)


async def _look_then_act(steps: CaseSteps, last_look: bool) -> FinalActionResult | None:
    case = steps.case
    check = await steps.calls.check_invoice()
    card = check.default_payment_method
    if last_look and check.invoice_status == "open" and card and card not in case.known_cards():
        await _charge(steps, card)
    if case.closed or case.external_payment is not None:
        return None
    if check.invoice_status == "paid":
        case.recovered(check.amount_paid, "invoice found paid at the final action")
        return None
    return await steps.calls.final_action(None)


async def _charge(steps: CaseSteps, card: str) -> None:
    case = steps.case
    case.busy = None
    charged = await steps.charge(Trigger.LAST_LOOK, None, payment_method=card)
    case.set_schedule(engine.after_retry_now(case.schedule, charged, workflow.now()))
    case.busy = "finalizing"
