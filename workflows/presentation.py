"""What the Temporal UI shows for a case: summaries and Markdown current details.

Only ids, amounts, codes and times: no customer names or emails (they would be searchable by
anyone with namespace access and kept for the retention period).
"""

from __future__ import annotations

from datetime import datetime

from models.dunning import DunningState
from models.money import plain_amount
from policies.engine import ActionKind, NextAction
from policies.schema import Policy


def case_summary(invoice_id: str, customer_id: str, amount_due: int, currency: str) -> str:
    return f"Dunning {invoice_id} · {customer_id} · {plain_amount(amount_due, currency)}"


def actor(by: str) -> str:
    """Who did it, in words: support staff by name, Stripe events as Stripe."""
    return f"Stripe ({by.removeprefix('stripe:')})" if by.startswith("stripe:") else by


def outcome_words(state: DunningState) -> str:
    """How a closed case ended: "recovered (charge attempt 2)"; never the workflow's status."""
    if state.outcome is None:
        return state.status.value
    words = state.outcome.value.replace("_", " ")
    return words + (f" ({state.outcome_reason})" if state.outcome_reason else "")


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def describe_action(policy: Policy, action: NextAction) -> str:
    if action.kind == ActionKind.RUN_STEP and action.step_index is not None:
        step = policy.steps[action.step_index]
        parts = ["retry charge" if action.charge else "no retry"]
        if step.template and step.channels:
            parts.append(f"{step.template} {'+'.join(step.channels.channels)}")
        return (
            f"step {action.step_index + 1}/{len(policy.steps)} ({', '.join(parts)}, {step.level})"
        )
    if action.kind == ActionKind.RETRY_NOW:
        return f"retry charge now ({action.trigger})"
    if action.kind == ActionKind.ASK_CUSTOMER:
        return "ask the customer to act on the payment"
    if action.kind == ActionKind.FINAL_ACTION:
        return f"final action: {policy.final.action}"
    if action.kind == ActionKind.WAIT_FOR_RESUME:
        return "paused until resumed"
    return "closed"


def details_markdown(state: DunningState, history: list[str]) -> str:
    lines = [f"## Dunning {state.invoice_id} · **{state.status.value}**", ""]
    if state.outcome:
        lines.append(f"- **Closed:** {outcome_words(state)}")
    lines += [
        f"- Policy: `{state.policy}` · steps done: **{state.current_step}/{state.total_steps}**"
        f" · attempts: **{state.attempts}** (cap {state.max_attempts} automatic)",
        f"- Last decline: `{state.last_decline_code or '—'}`"
        + (f" / advice `{state.last_advice_code}`" if state.last_advice_code else "")
        + f" · class: {state.decline_class}",
    ]
    if state.next_action:
        lines.append(f"- **Next:** {state.next_action} at {when(state.next_action_at)}")
    if state.final_deadline and not state.outcome:
        lines.append(f"- Final action `{state.final_action}` at {when(state.final_deadline)}")
    if state.status.value == "paused":
        lines.append("- **Paused** by support; deadlines move later while paused")
    if state.grace:
        total = sum(g.days for g in state.grace)
        lines.append(f"- Grace: **{total} days** in {len(state.grace)} grant(s)")
        # History payloads, details included, go through the payload codec (encrypted).
        lines.extend(
            f"  - +{g.days}d by {actor(g.by)} at {when(g.at)}: {g.reason}" for g in state.grace
        )
    if history:
        lines += ["", "### Done so far", *(f"{i}. {item}" for i, item in enumerate(history, 1))]
    return "\n".join(lines)
