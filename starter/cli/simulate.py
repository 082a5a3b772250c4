"""`dunning simulate`: policies side by side on one synthetic population, or a ledger backtest.

The simulation runs the pure policy engine (policies/simulator.py) without Temporal over a
population described by a model file (policies/simulation/default_model.yaml unless --model),
optionally refitted from the ledger (--fit-from-ledger, starter/simulate_fit.py). --backtest
replays the ledger's real cases of a period through each policy (starter/simulate_backtest.py).

Exit codes: 0 done; 1 a policy or model file is missing or invalid, or the ledger cannot be
read; 2 a bad command line (a date that does not parse, --cases below 1, --backtest without
--since and --until).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from starter.cli import UserError, command, console, fail, load_settings, redact, user_errors
from starter.cli.report import DATE_HELP, EXIT_USAGE, parse_when

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from policies.schema import Policy
    from policies.simulation_model import SimulationModel
    from starter.simulate_backtest import Backtest

CLOCK = (
    "failure instants uniform over one week (Monday 00:00 to Sunday 24:00 UTC);"
    " night is 22:00-06:00 UTC, weekend is Saturday and Sunday UTC"
)


def _policies(names: list[str]) -> list[Policy]:
    from policies.loader import POLICY_DIR, load_policy, resolve_policy_path

    return [load_policy(resolve_policy_path(n, POLICY_DIR / "default.yaml")) for n in names]


def _model(path: Path | None) -> SimulationModel:
    from policies.simulation_model import DEFAULT_MODEL, ModelError, load_model

    try:
        return load_model(path or DEFAULT_MODEL)
    except ModelError as err:
        raise UserError(f"bad model file: {err}") from None


def _with_ledger(read: Any) -> Any:
    """Run `read(session)` on DATABASE_URL; unreachable or unmigrated ledgers are one line."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from models.store import make_engine

    url = load_settings().database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise UserError(f"no ledger at {url}: start `dunning dev`, or set DATABASE_URL")
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return read(session)
    except sa.exc.DBAPIError as err:
        text = str(err.orig).strip()
        first = text.splitlines()[0] if text else type(err.orig).__name__
        raise UserError(f"reading the ledger at {redact(url)} failed: {first}") from None
    finally:
        engine.dispose()


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render(results: list[dict[str, Any]], header: str, notes: list[str]) -> None:
    from rich import box
    from rich.table import Table

    from models.money import currency_exponent

    def money(minor: int, currency: str) -> str:
        # Whole units: a simulated total has no meaningful cents.
        return f"{currency.upper()} {minor / 10 ** currency_exponent(currency):,.0f}"

    console.print(f"[bold]Policy simulation[/]: {header}")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    for result in results:
        table.add_column(result["policy"], justify="right", no_wrap=True)
    rows: list[tuple[str, Any]] = [
        ("Recovery rate", lambda r: _percent(r["recovery_rate"])),
        ("Revenue recovered", lambda r: money(r["amount_recovered"], r["currency"])),
        ("  of revenue due", lambda r: _percent(r["revenue_recovery_rate"])),
        ("  by retry", lambda r: _percent(r["recovered_by"]["retry"] / r["cases"])),
        ("  by a new card", lambda r: _percent(r["recovered_by"]["new_card"] / r["cases"])),
        ("  paid by the customer", lambda r: _percent(r["recovered_by"]["paid"] / r["cases"])),
        ("Final action", lambda r: _percent(r["final_action_share"])),
        ("Charges per case", lambda r: _number(r["charges_per_case"])),
        ("Messages per case", lambda r: _number(r["messages_per_case"])),
        ("Charges per recovered case", lambda r: _number(r["charges_per_recovered"])),
        ("Messages per recovered case", lambda r: _number(r["messages_per_recovered"])),
        ("Median days to recover", lambda r: _number(r["median_days_to_recover"], 1)),
        ("Charges at night or on weekends", lambda r: _percent(r["night_or_weekend_share"])),
        ("Replies per case", lambda r: _number(r["replies_per_case"], 3)),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results))
    # Side by side or not at all: widen past a narrow (or piped, 80-column) console.
    needed = 36 + sum(max(len(r["policy"]), 14) + 3 for r in results)
    if console.width >= needed:
        console.print(table)
    else:
        from rich.console import Console

        Console(width=needed, highlight=False).print(table)
    console.print(f"Clock: {CLOCK}.")
    for note in notes:
        console.print(note, soft_wrap=True)


def _by(backtest: Backtest, which: str) -> list[dict[str, Any]]:
    charges, messages = (
        getattr(backtest, f"charges_by_{which}"),
        getattr(backtest, f"messages_by_{which}"),
    )
    keys = sorted(set(charges) | set(messages), key=lambda k: (isinstance(k, str), k))
    return [{which: k, "charges": charges[k], "messages": messages[k]} for k in keys]


def backtest_dict(result: Backtest, since: datetime, until: datetime) -> dict[str, Any]:
    return {
        "policy": result.policy,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "cases": result.cases,
        "charges": result.charges,
        "messages": result.messages,
        "final_actions": result.final_actions,
        "actual": {"charges": result.actual_charges, "messages": result.actual_messages},
        "by_day": _by(result, "day"),
        "by_step": _by(result, "step"),
        "by_date": _by(result, "date"),
    }


def render_backtest(data: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    console.print(
        f"[bold]Backtest[/] of {data['policy']} on {data['cases']:,} real cases opened from"
        f" {data['since']} to {data['until']}: {data['charges']:,} charges and"
        f" {data['messages']:,} messages (really sent: {data['actual']['charges']:,} charges,"
        f" {data['actual']['messages']:,} messages); {data['final_actions']:,} final actions."
    )
    for which, title in (("step", "By step"), ("day", "By day since the failure")):
        table = Table(title=title, box=box.SIMPLE_HEAD)
        for name in (which.capitalize(), "Charges", "Messages"):
            table.add_column(name, justify="left" if name == which.capitalize() else "right")
        for row in data[f"by_{which}"]:
            table.add_row(str(row[which]), f"{row['charges']:,}", f"{row['messages']:,}")
        console.print(table)


@command(rich_help_panel="Reports")
def simulate(
    policy: list[str] = typer.Option(
        [], "--policy", metavar="NAME", help="Policy name or YAML path; repeat to compare."
    ),
    model: Path | None = typer.Option(
        None, "--model", metavar="FILE", help="Population model YAML (default: shipped model)."
    ),
    cases: int = typer.Option(100_000, "--cases", metavar="N", help="Simulated cases per policy."),
    seed: int = typer.Option(1, "--seed", metavar="N", help="Random seed: same seed, same answer."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    fit: bool = typer.Option(
        False, "--fit-from-ledger", help="Fit the model's main rates from the ledger."
    ),
    backtest: bool = typer.Option(
        False, "--backtest", help="Replay the ledger's real cases through each policy."
    ),
    since: str | None = typer.Option(
        None, "--since", metavar="DATE", help=f"Ledger cases opened at or after DATE. {DATE_HELP}"
    ),
    until: str | None = typer.Option(
        None, "--until", metavar="DATE", help=f"Ledger cases opened before DATE. {DATE_HELP}"
    ),
) -> None:
    """Compare policies on a simulated population, or backtest one on the ledger's cases.

    Prints per policy, side by side: recovery rate, revenue recovered, charges and messages per
    case and per recovered case, median days to recover, the share ending in the final action,
    and the share of charges at night or on weekends (UTC). Runs the pure engine, not Temporal.
    """
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    if start and end and start >= end:
        fail("--since must be before --until", EXIT_USAGE)
    if cases < 1:
        fail("--cases must be at least 1", EXIT_USAGE)
    if backtest and not (start and end):
        fail("--backtest needs --since and --until", EXIT_USAGE)
    with user_errors():
        policies = _policies(policy or ["default"])
        if backtest:
            _run_backtest(policies, start, end, as_json)  # type: ignore[arg-type]
            return
        _run_simulation(policies, _model(model), cases, seed, fit, start, end, as_json)


def _run_simulation(
    policies: list[Policy],
    population: SimulationModel,
    cases: int,
    seed: int,
    fit: bool,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    from policies.simulator import Simulator

    fitted: dict[str, list[str]] = {}
    if fit:
        from starter.simulate_fit import fit_model

        def read(session: Session) -> Any:
            return fit_model(session, population, since, until)

        result = _with_ledger(read)
        population, fitted = result.model, {"fitted": result.fitted, "defaults": result.defaults}
    simulator = Simulator(population)
    results = [simulator.run(p, cases, seed).as_dict() for p in policies]
    if as_json:
        out = {"model": population.name, "cases": cases, "seed": seed, "clock": CLOCK}
        typer.echo(json.dumps({**out, "fit": fitted or None, "policies": results}, indent=2))
        return
    notes = [f"Fitted from the ledger: {'; '.join(fitted['fitted']) or 'nothing'}."] if fit else []
    if fit:
        notes.append(f"Shipped defaults kept for: {'; '.join(fitted['defaults'])}.")
    render(results, f"{cases:,} cases per policy, seed {seed}, model {population.name}", notes)


def _run_backtest(policies: list[Policy], since: datetime, until: datetime, as_json: bool) -> None:
    from starter.simulate_backtest import backtest as run

    now = datetime.now(UTC)

    def read(session: Session) -> Any:
        return [backtest_dict(run(session, p, since, until, now), since, until) for p in policies]

    results = _with_ledger(read)
    if as_json:
        typer.echo(json.dumps({"backtests": results}, indent=2))
        return
    for data in results:
        render_backtest(data)
