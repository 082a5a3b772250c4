"""Running the service: `dunning dev | worker | api | migrate | demo`."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import sys

import typer

from starter.cli import command, console, load_settings, user_errors


@command(rich_help_panel="Run")
def dev(
    count: int = typer.Option(
        6, "--count", "-n", min=0, max=50, metavar="N", help="Demo cases to create (0: none)."
    ),
    reset: bool = typer.Option(
        False, "--reset", help="Delete the dev databases in .dev/ first (a clean slate)."
    ),
) -> None:
    """Run the whole stack locally with demo cases, until Ctrl-C.

    Temporal dev server (UI on :8233; reused if 7233 is taken), Stripe and SendGrid stand-ins
    (:12111, :12112; the real providers when STRIPE_API_KEY / SENDGRID_API_KEY are set),
    migrations, the worker on the demo policy and the API on :8000. State lives in .dev/.
    """
    from starter.cli.devstack import run_dev

    with user_errors("127.0.0.1:7233"):
        run_dev(console, count=count, reset=reset)


@command(rich_help_panel="Run")
def worker() -> None:
    """Run the Temporal worker (TEMPORAL_ADDRESS, DUNNING_TASK_QUEUE, DUNNING_POLICY, ...)."""
    from models.temporal import connect
    from policies.loader import load_policy

    # The mistakes a user makes most (a bad setting or policy, Temporal not running) are
    # checked here, so they read as one line rather than as the worker's traceback.
    with user_errors():
        settings = load_settings()
        load_policy(settings.dunning_policy)
    with user_errors(settings.temporal_address):
        asyncio.run(connect(settings))
    # The worker is its own program (`python -m worker`): the CLI never imports it (an
    # import-linter contract). exec keeps this process id, so signals reach the worker.
    argv = [sys.executable, "-m", "worker"]
    os.execv(argv[0], argv)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@command(rich_help_panel="Run")
def api(
    host: str | None = typer.Option(
        None, metavar="HOST", help="Interface to bind [default: API_HOST, 127.0.0.1]."
    ),
    port: int | None = typer.Option(
        None, min=1, max=65535, metavar="PORT", help="Port [default: API_PORT, 8000]."
    ),
) -> None:
    """Serve the Stripe webhook and support API (uvicorn): /webhooks/stripe, /healthz, /readyz."""
    from starter.cli import UserError

    with user_errors():
        settings = load_settings()
        host = host or settings.api_host
        port = port or settings.api_port
        if importlib.util.find_spec("starter.app") is None:
            raise UserError("starter/app.py is missing: the API is not part of this checkout")
        if not settings.webhook_secrets() and not settings.dev_mode:
            raise UserError(
                "STRIPE_WEBHOOK_SECRET is not set: the API cannot verify Stripe webhooks"
                " (set it, or DUNNING_ENV=dev for local use)"
            )
        if not settings.dunning_support_token and not settings.dev_mode:
            raise UserError(
                "DUNNING_SUPPORT_TOKEN is not set: the support API and console would be open"
                " (set it, or DUNNING_ENV=dev for local use)"
            )
        if _port_taken(host, port):
            raise UserError(f"{host}:{port} is already in use; choose another with --port")
        from models.temporal import resolve_keyring

        resolve_keyring(settings)  # missing or bad DUNNING_ENCRYPTION_KEYS: one line, exit 1
    import uvicorn

    # The factory builds the app from the same environment this process has.
    uvicorn.run("starter.app:create_app", factory=True, host=host, port=port)


@command(rich_help_panel="Run")
def migrate() -> None:
    """Upgrade the database at DATABASE_URL to the newest schema (Alembic head)."""
    from starter.cli import UserError, redact

    with user_errors():
        settings = load_settings()
        url = redact(settings.database_url)
        console.print(f"Migrating [bold]{url}[/] to head…")
        from models.migrate import upgrade_to_head

        try:
            upgrade_to_head(settings.database_url)
        except Exception as err:  # driver errors vary (refused, auth, unknown db, bad URL)
            text = str(err).strip()
            first = text.splitlines()[0] if text else type(err).__name__
            raise UserError(f"migrating {url} failed: {first}") from None
    console.print("[green]✓[/] Database schema is at head.")


@command(rich_help_panel="Try it")
def demo(
    count: int = typer.Option(
        6, "--count", "-n", min=1, max=50, metavar="N", help="Cases to create."
    ),
    api_url: str | None = typer.Option(
        None, "--api", metavar="URL", help="The dunning API [default: http://127.0.0.1:API_PORT]."
    ),
    stripe_url: str | None = typer.Option(
        None,
        "--stripe",
        metavar="URL",
        help="The Stripe stand-in [default: STRIPE_API_BASE, http://127.0.0.1:12111].",
    ),
    recover_after: float = typer.Option(
        20.0,
        "--recover-after",
        min=0,
        metavar="SECONDS",
        help="Seconds before the recovering customers fix cards.",
    ),
) -> None:
    """Create failing demo invoices that go through the real webhook path.

    Customers on the Stripe stand-in with declining test cards (insufficient funds, expired
    card, authentication required, generic decline) get invoices whose signed
    invoice.payment_failed webhooks reach the API. Then some customers switch to a working
    card (the cases recover), one case gets 3 days of grace, the rest head for cancellation.
    """
    from starter.cli.processes import saved_webhook_secret

    with user_errors():
        settings = load_settings()
    api_url = api_url or f"http://127.0.0.1:{settings.api_port}"
    stripe_url = stripe_url or settings.stripe_api_base or "http://127.0.0.1:12111"
    # The API's secret: from the environment, else the one `dunning dev` generated.
    secrets = settings.webhook_secrets()
    secret = secrets[0] if secrets else saved_webhook_secret()

    async def run() -> None:
        from models.temporal import connect
        from starter.cli import demo as cases_demo

        await cases_demo.preflight(stripe_url, api_url)
        client = await connect(settings)
        cases = await cases_demo.create_cases(
            settings, client, count=count, api_url=api_url, stripe_url=stripe_url,
            webhook_secret=secret, recover_after=recover_after, console=console,
        )  # fmt: skip
        console.print(cases_demo.plan_table(cases))
        await cases_demo.recover(
            settings, client, cases, stripe_url=stripe_url, recover_after=recover_after,
            console=console,
        )  # fmt: skip

    with user_errors(settings.temporal_address):
        asyncio.run(run())
