"""Support commands: `dunning status | list | grace | pause | resume | retry-now | stop`.

Every action is one of the workflow's Updates (through `starter.support.service`), so the
workflow's validator decides and a rejected action leaves no trace in the case's history.

Exit codes: 0 done; 1 Temporal unreachable or a bad setting; 2 the action was rejected (the
validator's message is printed) or the command line itself was wrong (click uses 2 for usage
errors too); 3 no dunning case exists for that invoice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from models.dunning import CaseStatus
from starter.cli import app, console, fail, load_settings, user_errors

if TYPE_CHECKING:
    from temporalio.client import Client

    from models.dunning import DunningState
    from models.settings import Settings
    from starter.support.service import Action, CaseSummary

EXIT_REJECTED = 2
EXIT_NOT_FOUND = 3
PANEL = "Support"
T = TypeVar("T")
# How long a command waits for Temporal and the case's worker to answer.
ANSWER_SECONDS = 20.0

STATUS_STYLE = {"active": "yellow", "paused": "cyan", "recovered": "green"}

INVOICE = typer.Argument(..., metavar="INVOICE", help="Stripe invoice id (in_...).")
BY = typer.Option(..., "--by", metavar="NAME", help="Who does this (kept in the audit log).")
REASON = typer.Option(..., "--reason", metavar="TEXT", help="Why (kept in the audit log).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _settings() -> Settings:
    with user_errors():
        return load_settings()


def _run(settings: Settings, work: Callable[[Client], Awaitable[T]]) -> T:
    """Connect to TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, run `work`, map failures to exits."""
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError, RPCStatusCode

    from starter.support.service import ActionRejected, CaseNotFound
    from worker import connect

    async def main() -> T:
        client = await connect(settings)
        # A query or an Update needs a worker; without one the SDK would wait for ever. (A
        # cancelled Update surfaces as WorkflowUpdateRPCTimeoutOrCancelledError.)
        return await asyncio.wait_for(work(client), ANSWER_SECONDS)

    with user_errors(settings.temporal_address):
        try:
            return asyncio.run(main())
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            fail(
                f"no answer within {ANSWER_SECONDS:g}s: is a worker (`dunning worker`) running?"
                " An action may still take effect once one is; check with `dunning status`."
            )
        except CaseNotFound as err:
            fail(str(err), EXIT_NOT_FOUND)
        except ActionRejected as err:
            fail(f"rejected: {err}", EXIT_REJECTED)
        except RPCError as err:
            # Connected, then the server went away or stopped answering: one line, not a trace.
            if err.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise
            fail(f"Temporal at {settings.temporal_address} did not answer ({err.status.name})")


def _echo_json(value: Any) -> None:
    # Plain stdout, not rich: rich would wrap long lines and break the JSON for scripts.
    typer.echo(json.dumps(value, indent=2))


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _show_state(state: DunningState, settings: Settings) -> None:
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
        next_action += f" at {_when(state.next_action_at)}"
    table.add_row("Next action", next_action)
    if state.final_deadline and not state.outcome:
        deadline = Text(f"{state.final_action} at {_when(state.final_deadline)}", style="bold")
        table.add_row("Final deadline", deadline)
    if state.paused_reason:
        table.add_row("Paused", Text(state.paused_reason))
    grace = Text(f"{state.grace_days_total} days in {len(state.grace)} grant(s)")
    for grant in state.grace:
        grace.append(f"\n+{grant.days}d by {grant.by} at {_when(grant.at)}: {grant.reason}")
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


@app.command(rich_help_panel=PANEL)
def status(invoice: str = INVOICE, as_json: bool = JSON) -> None:
    """Show a case: status, step, attempts, next action, final deadline, grace, emails."""
    from starter.support.service import case_status

    settings = _settings()
    state = _run(settings, lambda client: case_status(client, invoice))
    if as_json:
        _echo_json(state.model_dump(mode="json"))
    else:
        _show_state(state, settings)


def _summary_table(cases: list[CaseSummary], width: int) -> Table:
    from models.money import plain_amount

    # Ids are what people copy into the next command, so they are never cut; on a narrow
    # terminal the decline and customer columns go instead (`--json` has everything).
    columns = ["Invoice", "Customer", "Status", "Step", "Amount", "Decline", "Next (UTC)"]
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
            "Next (UTC)": f"{case.next_action_at:%Y-%m-%d %H:%M}" if case.next_action_at else "—",
        }
        table.add_row(*(cells[name] for name in columns))
    return table


@app.command("list", rich_help_panel=PANEL)
def list_cases(
    status: CaseStatus | None = typer.Option(
        None, "--status", case_sensitive=False, help="Only cases with this status."
    ),
    customer: str | None = typer.Option(
        None, "--customer", metavar="CUS", help="Only this Stripe customer's cases."
    ),
    due_within: str | None = typer.Option(
        None,
        "--due-within",
        metavar="DURATION",
        help="Only running cases whose next action is due within DURATION (30m, 24h, 3d).",
    ),
    as_json: bool = JSON,
) -> None:
    """List cases from Temporal visibility (at most 200)."""
    from policies.durations import parse_duration
    from starter.support import service

    try:
        window: timedelta | None = parse_duration(due_within) if due_within else None
        query = service.list_query(status.value if status else None, customer, window)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    settings = _settings()
    cases = _run(settings, lambda client: service.list_cases(client, query))
    if as_json:
        _echo_json([case.model_dump(mode="json") for case in cases])
    elif not cases:
        console.print("No dunning cases match.")
    else:
        console.print(_summary_table(cases, console.width))


def _act(invoice: str, action: Action, as_json: bool, **fields: Any) -> None:
    from models.dunning import GrantGraceResult
    from starter.support.service import action_input, run_action

    settings = _settings()
    payload = action_input(action, **fields)
    result = _run(settings, lambda client: run_action(client, invoice, action, payload))
    if as_json:
        _echo_json(result.model_dump(mode="json"))
        return
    console.print(Text.assemble(("✓ ", "green"), f"{invoice}: {result.message}"), soft_wrap=True)
    if isinstance(result, GrantGraceResult):
        # The one number support must read back to the customer: make it stand out.
        deadline = _when(result.new_final_deadline)
        console.print(
            Text.assemble(("New final deadline: ", "bold"), (deadline, "bold yellow")),
            f"({result.state.final_action})",
        )
    _show_state(result.state, settings)


@app.command(rich_help_panel=PANEL)
def grace(
    invoice: str = INVOICE,
    days: int = typer.Option(..., "--days", metavar="N", help="Days to add (policy limits)."),
    reason: str = REASON,
    by: str = BY,
    as_json: bool = JSON,
) -> None:
    """Grant grace: move the remaining schedule and the final action N days later."""
    _act(invoice, "grace", as_json, days=days, reason=reason, by=by)


@app.command(rich_help_panel=PANEL)
def pause(invoice: str = INVOICE, reason: str = REASON, by: str = BY, as_json: bool = JSON) -> None:
    """Pause a case: no charges or emails until resumed."""
    _act(invoice, "pause", as_json, reason=reason, by=by)


@app.command(rich_help_panel=PANEL)
def resume(invoice: str = INVOICE, by: str = BY, as_json: bool = JSON) -> None:
    """Resume a paused case; its deadlines move later by the time spent paused."""
    _act(invoice, "resume", as_json, by=by)


@app.command("retry-now", rich_help_panel=PANEL)
def retry_now(invoice: str = INVOICE, by: str = BY, as_json: bool = JSON) -> None:
    """Retry the charge now, outside the schedule."""
    _act(invoice, "retry-now", as_json, by=by)


@app.command(rich_help_panel=PANEL)
def stop(invoice: str = INVOICE, reason: str = REASON, by: str = BY, as_json: bool = JSON) -> None:
    """Stop dunning a case for good: no further charges, emails or final action."""
    _act(invoice, "stop", as_json, reason=reason, by=by)
