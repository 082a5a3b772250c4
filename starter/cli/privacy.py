"""Customer data protection: `dunning codec-server | encryption-key | forget`.

Exit codes of `forget`: 0 the customer's personal data is scrubbed (also when there was
nothing left to scrub); 1 a bad setting, or the ledger or Temporal unreachable; 2 refused,
because the customer still has a running case (stop it first), or the customer id is not a
Stripe id (click uses 2 for usage errors too).
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import TYPE_CHECKING

import typer

from starter.cli import (
    UserError,
    command,
    console,
    fail,
    ledger_errors,
    load_settings,
    user_errors,
)

if TYPE_CHECKING:
    from models.settings import Settings

PANEL = "Privacy"
EXIT_REFUSED = 2
CODEC_PORT = 8234  # beside the dev UI's 8233
CUSTOMER_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@command("codec-server", rich_help_panel=PANEL)
def codec_server(
    host: str = typer.Option("127.0.0.1", metavar="HOST", help="Interface to bind."),
    port: int = typer.Option(CODEC_PORT, min=1, max=65535, metavar="PORT", help="Port."),
) -> None:
    """Serve /decode and /encode for the Temporal UI and CLI with DUNNING_ENCRYPTION_KEYS.

    Point the UI at it (TEMPORAL_CODEC_ENDPOINT, or `temporal server start-dev
    --ui-codec-endpoint`) and the CLI with `temporal --codec-endpoint URL --codec-auth
    "Bearer TOKEN"`. Requests need `Authorization: Bearer DUNNING_CODEC_TOKEN` (browsers sign
    in once at /login); without a token it refuses to start unless DUNNING_ENV=dev.
    """
    with user_errors():
        settings = load_settings()
        from starter.codec_server import create_app

        app = create_app(settings)  # refuses bad or missing keys, or a missing token
        if _port_taken(host, port):
            raise UserError(f"{host}:{port} is already in use; choose another with --port")
    import uvicorn

    console.print(f"Codec server on http://{host}:{port} for the UI at {settings.temporal_ui_url}")
    uvicorn.run(app, host=host, port=port)


@command("encryption-key", rich_help_panel=PANEL)
def encryption_key(
    key_id: str = typer.Option("k1", "--id", metavar="ID", help="Key id to print with the key."),
) -> None:
    """Print a new key as `ID:KEY` for DUNNING_ENCRYPTION_KEYS (32 random bytes, base64).

    To rotate: put the new pair first (`k2:NEW,k1:OLD`), restart every process, and remove
    the old key only once no case that used it can still run (the longest case's duration).
    """
    from models.codec import new_key, parse_keyring

    pair = f"{key_id}:{new_key()}"
    with user_errors():
        try:
            parse_keyring(pair, "--id")
        except ValueError as err:
            raise UserError(str(err), code=2) from None
    print(pair)


@command(rich_help_panel=PANEL)
def forget(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help="Stripe customer id (cus_...)."),
) -> None:
    """Erase a customer's personal data from the ledger (right to erasure).

    Clears emails, names, the messages sent and free-text reasons of every case of the
    customer, keeping amounts, outcomes and dates for the recovery report. Refuses (exit 2)
    while the customer has a running case: stop it first with `dunning stop`.
    """
    if not CUSTOMER_ID.fullmatch(customer):
        fail(f"{customer!r} is not a Stripe customer id (cus_...)", EXIT_REFUSED)
    with user_errors():
        settings = load_settings()
    from models import erasure
    from models.store import Ledger, make_engine

    ledger = Ledger(make_engine(settings.database_url))
    try:
        with user_errors(), ledger_errors(settings.database_url):
            running = erasure.open_cases(ledger, customer)
        with user_errors(settings.temporal_address):
            running = sorted({*running, *asyncio.run(_running_in_temporal(settings, customer))})
        if running:
            fail(
                f"{customer} has running cases ({', '.join(running)}): stop them first"
                " (`dunning stop INVOICE --reason ... --by ...`), then forget",
                EXIT_REFUSED,
            )
        try:
            result = erasure.forget_customer(ledger, customer)
        except ValueError as err:  # a case opened meanwhile
            fail(f"{customer}: {err}: stop them first, then forget", EXIT_REFUSED)
    finally:
        ledger.engine.dispose()
    scrubbed = ", ".join(f"{table} {count}" for table, count in result.rows.items())
    console.print(
        f"Forgot {customer}: {len(result.invoices)} case(s)"
        f"{' (' + ', '.join(result.invoices) + ')' if result.invoices else ''};"
        f" rows scrubbed: {scrubbed}. Amounts and outcomes are kept for the report."
        " Temporal keeps the closed cases' histories, encrypted, until the namespace's"
        " retention period ends."
    )


async def _running_in_temporal(settings: Settings, customer: str) -> list[str]:
    """Invoices of the customer's running workflows: a case still opening may not be in the
    ledger yet."""
    from models.temporal import connect

    client = await connect(settings)
    query = f"CustomerId = '{customer}' AND ExecutionStatus = 'Running'"
    return [wf.id.removeprefix("dunning-") async for wf in client.list_workflows(query)]
