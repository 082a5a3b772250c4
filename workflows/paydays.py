"""Whose calendar a payday step reads: the customer's, in cases started since LOCAL_PAYDAYS.

A payday is a date, and a date depends on where the customer is: 20:00 UTC on the 14th is the
15th in Sydney. Cases started before read the UTC date; their histories replay with it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.case import Case

LOCAL_PAYDAYS = "local-paydays"


def payday_zone(case: Case) -> str | None:
    """The zone for the case's payday steps, decided once when the case opens."""
    policy, context = case.policy, case.context
    if policy is None or context is None or not context.timezone:
        return None
    # Asked only where it matters, so a case without payday steps records no patch marker.
    if not any(step.payday for step in policy.steps):
        return None
    return context.timezone if workflow.patched(LOCAL_PAYDAYS) else None
