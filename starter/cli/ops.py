"""Ops commands: `dunning reconcile`.

Exit codes: 0 done (whether or not anything needed closing); 1 Temporal or the database
unreachable, or a bad setting.
"""

from __future__ import annotations

import json

import typer
from rich.text import Text

from starter.cli import UserError, command, console, load_settings, redact, user_errors

PANEL = "Ops"


@command(rich_help_panel=PANEL)
def reconcile(
    invoices: list[str] | None = typer.Argument(
        None, metavar="INVOICE...", help="Only these invoices' cases (default: every open case)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Close ledger cases whose workflow ended outside its own path (terminated, timed out).

    The worker does this every DUNNING_RECONCILE_SECONDS; run it to see the result now.
    Each case found gets its real end in the ledger (Temporal's close status and time, and
    the reason given when it was terminated), so the report stops counting it in progress.
    """
    import asyncio

    from models.reconcile import reconcile as run
    from models.store import Ledger, make_engine
    from models.temporal import connect

    with user_errors():
        settings = load_settings()

    async def main() -> list[dict[str, str]]:
        client = await connect(settings)
        ledger = Ledger(make_engine(settings.database_url))
        try:
            found = await run(client, ledger, invoices or ())
        finally:
            ledger.engine.dispose()
        return [
            {
                "invoice_id": item.invoice_id,
                "workflow_id": item.workflow_id,
                "outcome": item.outcome.value,
                "closed_at": item.closed_at.isoformat(),
                "reason": item.reason,
            }
            for item in found
        ]

    import sqlalchemy as sa

    with user_errors(settings.temporal_address):
        try:
            found = asyncio.run(main())
        except sa.exc.DBAPIError as err:  # refused, auth, unknown database, missing tables
            first = (str(err.orig).strip().splitlines() or [type(err.orig).__name__])[0]
            raise UserError(f"the ledger at {redact(settings.database_url)}: {first}") from None
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for item in found:
        line = f"{item['invoice_id']}: {item['outcome']} at {item['closed_at']} ({item['reason']})"
        console.print(Text(line), soft_wrap=True)
    console.print(f"Reconciled {len(found)} case(s); every other open case is running.")
