"""How a case ends once its outcome is known: the outcome into the ledger (then announced to
the merchant) and the closing email to the customer."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.dunning import Outcome
    from workflows.calls import CaseCalls
    from workflows.case import Case
    from workflows.steps import CaseSteps

# Before it, the closing email waited for the outcome's ledger write; now both local activities
# start in the same workflow task and run side by side (neither holds the other back).
CLOSING_BESIDE_OUTCOME = "closing-email-beside-outcome"
# The outcome's email: (template, dedupe key, level).
CLOSING_EMAIL = {
    Outcome.RECOVERED: ("recovered", "recovered", None),
    Outcome.SUBSCRIPTION_CANCELED: ("canceled", "final", "final"),
}


async def finish(case: Case, calls: CaseCalls, steps: CaseSteps) -> None:
    if workflow.patched(CLOSING_BESIDE_OUTCOME):
        await asyncio.gather(record_outcome(calls, steps), closing_email(case, steps))
    else:
        await record_outcome(calls, steps)
        await closing_email(case, steps)


async def record_outcome(calls: CaseCalls, steps: CaseSteps) -> None:
    await calls.close_case()
    steps.announce_outcome()  # to the merchant once the ledger has the outcome


async def closing_email(case: Case, steps: CaseSteps) -> None:
    closing = CLOSING_EMAIL.get(case.outcome) if case.outcome is not None else None
    if closing and case.context is not None:
        template, key, level = closing
        await steps.email(template, key, level=level)
