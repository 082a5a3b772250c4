"""`dunning report`: the recovery report (starter/support/report.py) from the ledger, and
with `--by` or `--experiment` the grouped report (starter/support/report_by.py) with the
experiment's arms compared (starter/support/report_experiment.py).

Exit codes: 0 done; 1 the ledger cannot be read (unreachable, not migrated, bad setting);
2 a bad command line, such as a date that does not parse (click's code for usage errors).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich import box
from rich.table import Table

from starter.cli import UserError, command, console, fail, load_settings, redact, user_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from starter.support.report import RecoveryReport

T = TypeVar("T")

EXIT_USAGE = 2
DATE_HELP = "YYYY-MM-DD or an ISO 8601 datetime; without a zone it is UTC."
GROUPINGS = ("segment", "policy", "variant", "decline_code", "channel", "step")
OUTCOME_LABELS = {
    "subscription_canceled": "subscription canceled",
    "marked_uncollectible": "marked uncollectible",
    "left_past_due": "left past due",
}


def parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} {value!r} is not a date: use {DATE_HELP}", EXIT_USAGE)
    # An aware instant: the ledger's timestamps are timezone-aware.
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _title(report: RecoveryReport) -> str:
    return _title_of(report.since, report.until)


def render(report: RecoveryReport) -> None:
    from models.money import plain_amount
    from starter.cli.report_tables import render_customers
    from starter.support.report import duration_words

    console.print(f"[bold]Recovery report[/]: {_title(report)}")
    summary = Table(box=box.SIMPLE_HEAD)
    summary.add_column("Cases")
    summary.add_column("Count", justify="right")
    summary.add_column("Of opened", justify="right")
    rows: list[tuple[str, int]] = [
        ("Opened", report.opened),
        ("In progress", report.in_progress),
        ("Closed", report.closed),
        ("Recovered", report.recovered),
        ("Canceled (final action)", report.canceled),
        *((f"  {OUTCOME_LABELS[k]}", n) for k, n in report.canceled_by.items()),
        ("Stopped by support", report.stopped),
        ("Already paid", report.already_paid),
        ("Voided", report.voided),
        ("Ended with an error", report.errors),
        ("Ended outside the workflow (reconciled)", report.ended_outside),
    ]
    for label, count in rows:
        share = count / report.opened if report.opened else None
        summary.add_row(label, f"{count:,}", _percent(share))
    console.print(summary)
    console.print(
        f"Recovery rate: [bold]{_percent(report.recovery_rate)}[/] of opened,"
        f" [bold]{_percent(report.recovery_rate_closed)}[/] of closed."
        f"  Median time to recovery: [bold]{duration_words(report.median_seconds_to_recovery)}[/]"
    )
    amounts = ", ".join(plain_amount(n, c) for c, n in report.amount_recovered.items())
    console.print(f"Amount recovered: [bold]{amounts or '–'}[/]\n")
    if report.unresolved_messages:
        console.print(
            f"[bold yellow]{report.unresolved_messages:,} message(s) with unknown delivery[/]"
            " (ledger notifications `uncertain`): SendGrid could not confirm them; look at them.\n"
        )

    codes = Table(title="By first decline code", box=box.SIMPLE_HEAD)
    for name in ("Decline code", "Opened", "Closed", "Recovered", "Rate"):
        codes.add_column(name, justify="left" if name == "Decline code" else "right")
    for row in report.by_decline_code:
        codes.add_row(
            row.decline_code or "(none)",
            f"{row.opened:,}",
            f"{row.closed:,}",
            f"{row.recovered:,}",
            _percent(row.recovery_rate),
        )
    console.print(codes)

    steps = Table(title="By the step that recovered", box=box.SIMPLE_HEAD)
    for name in ("Step", "Recovered", "Share"):
        steps.add_column(name, justify="left" if name == "Step" else "right")
    for step in report.by_step:
        label = f"step {step.step}" if step.step is not None else "outside the schedule"
        steps.add_row(label, f"{step.recovered:,}", _percent(step.share))
    console.print(steps)

    channels = Table(title="By channel", box=box.SIMPLE_HEAD)
    for name in ("Channel", "Sent", "Delivered", "Read", "Recovered after"):
        channels.add_column(name, justify="left" if name == "Channel" else "right")
    for channel in report.by_channel:
        cells = (channel.sent, channel.delivered, channel.engaged, channel.recovered_after)
        channels.add_row(channel.channel, *("—" if n is None else f"{n:,}" for n in cells))
    console.print(channels)
    render_customers(report)


def _read(database_url: str, compute: Callable[[Session], T]) -> T:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from models.store import make_engine

    if database_url.startswith("sqlite:///"):
        # SQLite would create an empty file and then find no tables: say what is missing.
        path = Path(database_url.removeprefix("sqlite:///"))
        if not path.exists():
            raise UserError(
                f"no ledger at {path}: start `dunning dev`, or set DATABASE_URL to the ledger"
            )
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return compute(session)
    except sa.exc.DBAPIError as err:  # refused, auth, unknown database, missing tables
        text = str(err.orig).strip()
        first = text.splitlines()[0] if text else type(err.orig).__name__
        missing_table = "relation" in first or "no such table" in first
        hint = " (run `dunning migrate`)" if missing_table else ""
        raise UserError(
            f"reading the ledger at {redact(database_url)} failed: {first}{hint}"
        ) from None
    finally:
        engine.dispose()


@command(rich_help_panel="Reports")
def report(
    since: str | None = typer.Option(
        None, "--since", metavar="DATE", help=f"Cases opened at or after DATE. {DATE_HELP}"
    ),
    until: str | None = typer.Option(
        None, "--until", metavar="DATE", help=f"Cases opened before DATE. {DATE_HELP}"
    ),
    by: list[str] = typer.Option(
        [],
        "--by",
        metavar="GROUPING",
        help=f"One table per grouping (repeatable): {', '.join(GROUPINGS)}.",
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", metavar="NAME", help="Only this experiment; compares its arms."
    ),
    segment: str | None = typer.Option(
        None, "--segment", metavar="NAME", help="Only cases of this segment."
    ),
    policy: str | None = typer.Option(
        None, "--policy", metavar="NAME", help="Only cases of this policy."
    ),
    variant: str | None = typer.Option(
        None, "--variant", metavar="ARM", help="Only cases of this arm."
    ),
    control: str | None = typer.Option(
        None, "--control", metavar="ARM", help='The control arm (default: the arm "control").'
    ),
    min_effect: float = typer.Option(
        0.05,
        "--min-effect",
        metavar="SHARE",
        help="Smallest recovery-rate difference worth detecting (absolute, 0.05 = 5 points).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the --by tables as CSV."),
) -> None:
    """Recovery report from the ledger: recovered, canceled, in progress, amounts, medians.

    Every figure is about the cases opened in the window, whenever they closed: recovery
    rate of opened and of closed cases, amount recovered per currency, final actions, the
    median time to recovery, and recovery by first decline code and by schedule step.
    With --by, one table per grouping, rates over finished cases only (open ones apart);
    with --experiment, each arm against the control and a verdict once both have enough cases.
    """
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    if start and end and start >= end:
        fail("--since must be before --until", EXIT_USAGE)
    for name in by:
        if name not in GROUPINGS:
            fail(f"--by {name!r} is not one of {', '.join(GROUPINGS)}", EXIT_USAGE)
    if not 0 < min_effect < 1:
        fail("--min-effect is an absolute rate difference between 0 and 1", EXIT_USAGE)
    if as_json and as_csv:
        fail("--json and --csv: choose one", EXIT_USAGE)
    filters: dict[str, Any] = {"segment": segment, "policy": policy, "variant": variant}
    if by or experiment or as_csv or any(filters.values()):
        _grouped(by, start, end, experiment, control, min_effect, as_json, as_csv, filters)
        return
    with user_errors():
        result = _read(load_settings().database_url, _plain(start, end))
    if as_json:
        # Plain stdout, not rich: rich would wrap long lines and break the JSON for scripts.
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        render(result)


def _plain(since: datetime | None, until: datetime | None) -> Callable[[Session], RecoveryReport]:
    from starter.support.report import compute_report

    return lambda session: compute_report(session, since=since, until=until)


def _grouped(
    by: list[str],
    since: datetime | None,
    until: datetime | None,
    experiment: str | None,
    control: str | None,
    min_effect: float,
    as_json: bool,
    as_csv: bool,
    filters: dict[str, Any],
) -> None:
    from starter.cli.report_tables import grouped_csv, render_grouped
    from starter.support.report_by import Filters
    from starter.support.report_experiment import NoControl, compute_grouped

    chosen = Filters(since=since, until=until, experiment=experiment, **filters)
    groupings: Any = list(dict.fromkeys(by))  # each once, in the order asked

    def compute(session: Session) -> Any:
        try:
            return compute_grouped(session, groupings, chosen, control, min_effect)
        except NoControl as err:
            raise UserError(str(err), EXIT_USAGE) from None

    with user_errors():
        result = _read(load_settings().database_url, compute)
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    elif as_csv:
        typer.echo(grouped_csv(result), nl=False)
    else:
        console.print(f"[bold]Recovery report[/]: {_title_of(since, until)}")
        render_grouped(result)


def _title_of(since: datetime | None, until: datetime | None) -> str:
    if since and until:
        return f"cases opened from {since.isoformat()} to {until.isoformat()}"
    if since:
        return f"cases opened since {since.isoformat()}"
    if until:
        return f"cases opened before {until.isoformat()}"
    return "all cases"
