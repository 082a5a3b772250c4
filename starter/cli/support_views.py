"""How the support commands print cases: a state panel and a list table (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from starter.cli import console

if TYPE_CHECKING:
    from models.dunning import DunningState
    from models.settings import Settings
    from starter.support.service import CaseSummary

STATUS_STYLE = {"active": "yellow", "paused": "cyan", "recovered": "green"}


def when(moment: Any) -> str:
    """A moment in the reader's own time zone (TZ, else the system's), with the zone named."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


def show_state(state: DunningState, settings: Settings, deadline_shown: bool = False) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    status = state.status.value + (f" ({state.outcome.value})" if state.outcome else "")
    # Text, not markup: reasons and names are free text and may contain [brackets].
    table.add_row("Status", Text(status, style=STATUS_STYLE.get(state.status.value, "red")))
    table.add_row("Customer", Text(state.customer_id))
    table.add_row("Policy", Text(state.policy))
    table.add_row("Step", f"{state.current_step}/{state.total_steps}")
    table.add_row("Attempts", f"{state.attempts} (automatic cap {state.max_attempts})")
    next_action = state.next_action or "—"
    if state.next_action_at:
        next_action += f" at {when(state.next_action_at)}"
    table.add_row("Next action", next_action)
    if state.final_deadline and not state.outcome and not deadline_shown:
        deadline = Text(f"{state.final_action} at {when(state.final_deadline)}", style="bold")
        table.add_row("Final deadline", deadline)
    if state.paused_reason:
        table.add_row("Paused", Text(state.paused_reason))
    grace = Text(f"{state.grace_days_total} days in {len(state.grace)} grant(s)")
    for grant in state.grace:
        grace.append(f"\n+{grant.days}d by {grant.by} at {when(grant.at)}: {grant.reason}")
    table.add_row("Grace", grace if state.grace else "none")
    decline = state.last_decline_code or "—"
    if state.last_advice_code:
        decline += f" (advice {state.last_advice_code})"
    table.add_row("Last decline", Text(f"{decline} · class {state.decline_class}"))
    table.add_row("Emails sent", Text(", ".join(state.notifications_sent) or "none"))
    console.print(
        Panel(table, title=f"Dunning {state.invoice_id}", title_align="left", expand=False)
    )
    # Outside the panel and unwrapped, so the link stays whole and clickable.
    ui = f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows"
    console.print(
        Text(f"Temporal UI: {ui}/dunning-{state.invoice_id}", style="dim"), soft_wrap=True
    )


def summary_table(cases: list[CaseSummary], width: int) -> Table:
    from models.money import plain_amount

    # Ids are what people copy into the next command, so they are never cut; on a narrow
    # terminal the decline and customer columns go instead (`--json` has everything).
    columns = ["Invoice", "Customer", "Status", "Step", "Amount", "Decline", "Next"]
    if width < 130:
        columns.remove("Decline")
    if width < 100:
        columns.remove("Customer")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        table.add_column(name, no_wrap=name != "Status", overflow="fold")
    for case in cases:
        status = case.status or "—"
        # A terminated or failed workflow keeps its last DunningStatus: say so.
        if case.workflow_status not in ("running", "completed"):
            status += f" ({case.workflow_status})"
        amount = "—"
        if case.amount_due is not None and case.currency:
            amount = plain_amount(case.amount_due, case.currency)
        cells: dict[str, Text | str] = {
            "Invoice": Text(case.invoice_id),
            "Customer": Text(case.customer_id or "—"),
            "Status": Text(status, style=STATUS_STYLE.get(case.status or "", "")),
            "Step": "—" if case.step is None else str(case.step),
            "Amount": amount,
            "Decline": Text(case.decline_code or "—"),
            "Next": when(case.next_action_at),
        }
        table.add_row(*(cells[name] for name in columns))
    return table
