"""Support commands: `dunning status | list | grace | pause | resume | retry-now | stop`.

Every action is one of the workflow's Updates (through `starter.support.service`), so the
workflow's validator decides and a rejected action leaves no trace in the case's history.

Each action has a request id (`--request-id`, generated when absent) that becomes the Update's
id: running the same command again with the same id, e.g. after "no answer within 20s",
applies the action at most once and prints the first answer.

Exit codes: 0 done; 1 Temporal unreachable or a bad setting; 2 the action was rejected (the
validator's message is printed) or the command line itself was wrong (click uses 2 for usage
errors too, and so does a bad --request-id); 3 no dunning case exists for that invoice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.text import Text

from models.dunning import CaseStatus
from starter.cli import command, console, fail, load_settings, user_errors
from starter.cli.support_views import show_state, summary_table, when

if TYPE_CHECKING:
    from temporalio.client import Client

    from models.settings import Settings
    from starter.support.service import Action

EXIT_REJECTED = 2
EXIT_NOT_FOUND = 3
PANEL = "Support"
T = TypeVar("T")
# How long a command waits for Temporal and the case's worker to answer.
ANSWER_SECONDS = 20.0

INVOICE = typer.Argument(..., metavar="INVOICE", help="Stripe invoice id (in_...).")
BY = typer.Option(..., "--by", metavar="NAME", help="Who does this (kept in the audit log).")
REASON = typer.Option(..., "--reason", metavar="TEXT", help="Why (kept in the audit log).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
REQUEST_ID = typer.Option(
    None,
    "--request-id",
    metavar="ID",
    help="Idempotency key: the same ID again applies the action at most once (printable"
    " ASCII, at most 200 characters; generated when absent).",
)


def _settings() -> Settings:
    with user_errors():
        return load_settings()


def _run(
    settings: Settings, work: Callable[[Client], Awaitable[T]], request_id: str | None = None
) -> T:
    """Connect to TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, run `work`, map failures to exits."""
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError, RPCStatusCode

    from models.temporal import connect
    from starter.support.service import ActionRejected, CaseNotFound

    async def main() -> T:
        client = await connect(settings)
        # A query or an Update needs a worker; without one the SDK would wait for ever. (A
        # cancelled Update surfaces as WorkflowUpdateRPCTimeoutOrCancelledError.)
        return await asyncio.wait_for(work(client), ANSWER_SECONDS)

    with user_errors(settings.temporal_address):
        try:
            return asyncio.run(main())
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            retry = (
                f" To retry it safely (applied at most once), add --request-id {request_id}."
                if request_id
                else ""
            )
            fail(
                f"no answer within {ANSWER_SECONDS:g}s: is a worker (`dunning worker`) running?"
                " An action may still take effect once one is; check with `dunning status`." + retry
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


@command(rich_help_panel=PANEL)
def status(invoice: str = INVOICE, as_json: bool = JSON) -> None:
    """Show a case: status, step, attempts, next action, final deadline, grace, emails."""
    from starter.support.service import case_status

    settings = _settings()
    state = _run(settings, lambda client: case_status(client, invoice))
    if as_json:
        _echo_json(state.model_dump(mode="json"))
    else:
        show_state(state, settings)


@command("list", rich_help_panel=PANEL)
def list_cases(
    status: CaseStatus | None = typer.Option(
        None,
        "--status",
        case_sensitive=False,
        metavar="STATUS",
        help="Only cases with this status: " + ", ".join(CaseStatus) + ".",
    ),
    customer: str | None = typer.Option(
        None, "--customer", metavar="CUS", help="Only this Stripe customer's cases."
    ),
    segment: str | None = typer.Option(
        None, "--segment", metavar="RULE", help="Only cases opened under this segment rule."
    ),
    policy: str | None = typer.Option(
        None, "--policy", metavar="NAME", help="Only cases on this policy (chosen by rules)."
    ),
    variant: str | None = typer.Option(
        None, "--variant", metavar="ARM", help="Only cases in this experiment arm."
    ),
    due_within: str | None = typer.Option(
        None,
        "--due-within",
        metavar="DURATION",
        help="Only running cases whose next action is due within DURATION (30m, 24h, 3d).",
    ),
    as_json: bool = JSON,
    ui_links: bool = typer.Option(
        False,
        "--ui-links",
        help="Print the Temporal UI links of the ops views (open, paused, due, recovered, ...)"
        " instead of listing; --customer narrows them.",
    ),
) -> None:
    """List cases from Temporal visibility (at most 200)."""
    from policies.durations import parse_duration
    from starter.support import service

    if ui_links:
        _print_ui_links(_settings(), customer, as_json)
        return

    try:
        window: timedelta | None = parse_duration(due_within) if due_within else None
        query = service.list_query(
            status.value if status else None,
            customer,
            window,
            segment=segment,
            policy=policy,
            variant=variant,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    settings = _settings()
    cases = _run(settings, lambda client: service.list_cases(client, query))
    if as_json:
        _echo_json([case.model_dump(mode="json") for case in cases])
    elif not cases:
        console.print("No dunning cases match.")
    else:
        console.print(summary_table(cases, console.width))


def _print_ui_links(settings: Settings, customer: str | None, as_json: bool) -> None:
    from starter.support.ui_links import ui_links

    links = ui_links(settings, customer)
    if as_json:
        _echo_json(links)
        return
    for name, url in links.items():
        console.print(Text(name, style="bold"))
        console.print(Text(f"  {url}"), soft_wrap=True)  # whole, so it stays clickable


def _act(
    invoice: str, action: Action, as_json: bool, request_id: str | None, **fields: Any
) -> None:
    from models.dunning import GrantGraceResult
    from starter.support.service import BadRequestId, action_input, request_id_or_new, run_action

    try:
        key = request_id_or_new(request_id)
    except BadRequestId as err:
        fail(f"--request-id: {err}", 2)
    settings = _settings()
    payload = action_input(action, **fields)
    result = _run(settings, lambda client: run_action(client, invoice, action, payload, key), key)
    if as_json:
        _echo_json(result.model_dump(mode="json"))
        return
    console.print(Text.assemble(("✓ ", "green"), f"{invoice}: {result.message}"), soft_wrap=True)
    if isinstance(result, GrantGraceResult):
        # The one date support must read back to the customer: once, in their own time zone.
        deadline = when(result.new_final_deadline)
        console.print(
            Text.assemble(("New final deadline: ", "bold"), (deadline, "bold yellow")),
            f"({result.state.final_action})",
        )
    show_state(result.state, settings, deadline_shown=isinstance(result, GrantGraceResult))


@command(rich_help_panel=PANEL)
def grace(
    invoice: str = INVOICE,
    days: int = typer.Option(..., "--days", metavar="N", help="Days to add (policy limits)."),
    reason: str = REASON,
    by: str = BY,
    as_json: bool = JSON,
    request_id: str | None = REQUEST_ID,
) -> None:
    """Grant grace: move the remaining schedule and the final action N days later."""
    _act(invoice, "grace", as_json, request_id, days=days, reason=reason, by=by)


@command(rich_help_panel=PANEL)
def pause(
    invoice: str = INVOICE,
    reason: str = REASON,
    by: str = BY,
    as_json: bool = JSON,
    request_id: str | None = REQUEST_ID,
) -> None:
    """Pause a case: no charges or emails until resumed."""
    _act(invoice, "pause", as_json, request_id, reason=reason, by=by)


@command(rich_help_panel=PANEL)
def resume(
    invoice: str = INVOICE,
    by: str = BY,
    as_json: bool = JSON,
    request_id: str | None = REQUEST_ID,
) -> None:
    """Resume a paused case; its deadlines move later by the time spent paused."""
    _act(invoice, "resume", as_json, request_id, by=by)


@command("retry-now", rich_help_panel=PANEL)
def retry_now(
    invoice: str = INVOICE,
    by: str = BY,
    as_json: bool = JSON,
    request_id: str | None = REQUEST_ID,
) -> None:
    """Retry the charge now, outside the schedule."""
    _act(invoice, "retry-now", as_json, request_id, by=by)


@command(rich_help_panel=PANEL)
def stop(
    invoice: str = INVOICE,
    reason: str = REASON,
    by: str = BY,
    as_json: bool = JSON,
    request_id: str | None = REQUEST_ID,
) -> None:
    """Stop dunning a case for good: no further charges, emails or final action."""
    _act(invoice, "stop", as_json, request_id, reason=reason, by=by)
