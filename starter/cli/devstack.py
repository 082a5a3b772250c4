"""`dunning dev`: the whole stack on one machine with embedded defaults, until Ctrl-C.

Order matters: Temporal first (reused when something already listens on 7233), then the
stand-ins the worker and API call, the database, the worker and API as subprocesses, and
only when `/readyz` answers, the demo cases. Stopping runs the other way round.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console

from models.settings import Settings
from starter.cli import UserError, devtemporal, load_settings, redact
from starter.cli.devsendgrid import SENDGRID_PORT, start_sendgrid
from starter.cli.devtwilio import start_twilio
from starter.cli.processes import (
    DEV_DIR,
    HOST,
    Processes,
    new_webhook_secret,
    require_free,
    reset_dev_databases,
    wait_until,
)

TEMPORAL_PORT, UI_PORT, API_PORT, CODEC_PORT = 7233, 8233, 8000, 8234
STRIPE_PORT = 12111
NAMESPACE = "default"
UI_QUERY = 'WorkflowType="DunningWorkflow"'
# Routine lines kept out of the console (they stay in .dev/logs/): the Stripe SDK's log of
# every request, readiness polls, and webhooks that were accepted.
QUIET = {
    "worker": re.compile(r" INFO stripe: "),
    "api": re.compile(r'"(GET /readyz|POST /webhooks/(stripe|twilio|sendgrid)) HTTP/[\d.]+" 2\d\d'),
}


def _step(console: Console, name: str, detail: str) -> None:
    console.print(f"[green]✓[/] [bold]{name:<16}[/] {detail}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (and a closed terminal's SIGHUP) act like Ctrl-C


def _configured(settings: Settings, name: str) -> bool:
    # Set to a non-empty value other than the stand-in default (an .env copied from the
    # example may hold empty keys).
    default = Settings.model_fields[name].default
    return name in settings.model_fields_set and getattr(settings, name) not in ("", default)


def run_dev(console: Console, count: int, reset: bool) -> None:
    settings = load_settings()
    # A key set in the environment or .env means the real provider; otherwise a stand-in.
    real_stripe = _configured(settings, "stripe_api_key")
    real_sendgrid = _configured(settings, "sendgrid_api_key")
    if reset:
        reset_dev_databases(console, settings, TEMPORAL_PORT)
    require_free(API_PORT, "the API")
    if not real_stripe:
        require_free(STRIPE_PORT, "the Stripe stand-in")
    if not real_sendgrid:
        require_free(SENDGRID_PORT, "the SendGrid stand-in")
    processes = Processes(console)
    servers: list[Any] = []
    handled = [
        signal.SIGINT,
        signal.SIGTERM,
        *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []),
    ]
    # Installed for SIGINT too: a shell starting us in the background may have ignored it.
    previous = {sig: signal.signal(sig, _interrupt) for sig in handled}
    try:
        _start(console, settings, processes, servers, count, real_stripe, real_sendgrid)
        while True:
            processes.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("\n[bold]Stopping the dev stack…[/]")
    finally:
        # A second Ctrl-C must not cut the cleanup short; every wait below is bounded.
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        processes.stop(("api", "worker", "codec"))
        for server in servers:
            server.stop()
        processes.stop(("temporal",))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("[bold]Everything `dunning dev` started has stopped.[/]")


def _start(
    console: Console,
    settings: Settings,
    processes: Processes,
    servers: list[Any],
    count: int,
    real_stripe: bool,
    real_sendgrid: bool,
) -> None:
    from models.migrate import upgrade_to_head
    from policies.loader import POLICY_DIR
    from standins.server import BackgroundServer
    from standins.stripe_api import StripeStandinConfig
    from standins.stripe_api import create_app as stripe_app

    address = f"{HOST}:{TEMPORAL_PORT}"
    # One keyring for every process (and this one), so the UI and CLI decode them all.
    keys = devtemporal.dev_keys(settings)
    encryption = devtemporal.encryption_settings(keys)
    settings = settings.model_copy(update=encryption)
    codec_url = f"http://{HOST}:{CODEC_PORT}" if keys else None
    if codec_url:
        require_free(CODEC_PORT, "the codec server")
    started = devtemporal.start_or_reuse(
        processes, TEMPORAL_PORT, UI_PORT, NAMESPACE,
        lambda text: _step(console, "Temporal", text), codec_url,
    )  # fmt: skip
    # Only a server we started holds nothing but our own dev cases.
    added, closed = asyncio.run(
        devtemporal.prepare(settings, address, NAMESPACE, started and not real_stripe)
    )
    _step(console, "Search attributes", f"registered {', '.join(added)}" if added else "present")
    if closed:
        _step(console, "Earlier cases", f"terminated {closed} still open (their invoices are gone)")

    env = dict(os.environ)
    env.update(
        TEMPORAL_ADDRESS=address,
        TEMPORAL_NAMESPACE=NAMESPACE,
        DUNNING_POLICY=str(POLICY_DIR / "demo.yaml"),
        # The demo's 50/50 experiment (two message variants), so the report compares arms.
        DUNNING_RULES=str(POLICY_DIR / "demo-rules.yaml"),
        DATABASE_URL=settings.database_url,
        DUNNING_ENV="dev",
        WORKER_SHUTDOWN_SECONDS="5",  # Ctrl-C should not wait 30 s on a demo activity
        PYTHONUNBUFFERED="1",
        TEMPORAL_UI_URL=f"http://localhost:{UI_PORT}",
        **{name.upper(): value for name, value in encryption.items()},
    )
    if codec_url:
        devtemporal.start_codec_server(processes, env, CODEC_PORT)
        _step(console, "Codec server", f"{codec_url} (the UI decodes payloads through it)")
    api_url = f"http://{HOST}:{API_PORT}"
    # Messages link to the payment page on the local API (a new link secret each run, unless
    # one is set: links from an earlier run then say "not valid").
    env.setdefault("DUNNING_PUBLIC_URL", api_url)
    if not env.get("DUNNING_LINK_SECRET"):
        env["DUNNING_LINK_SECRET"] = f"dev:{secrets.token_urlsafe(32)}"
    secret = None
    if real_stripe:
        _step(console, "Stripe", "real Stripe (STRIPE_API_KEY is set); no demo cases")
        if not settings.webhook_secrets():
            console.print("[yellow]  Set STRIPE_WEBHOOK_SECRET to the `stripe listen` secret[/]")
    else:
        secret = new_webhook_secret()
        config = StripeStandinConfig(
            webhook_url=f"{api_url}/webhooks/stripe", webhook_secret=secret
        )
        stripe = BackgroundServer(stripe_app(config), port=STRIPE_PORT).start()
        servers.append(stripe)
        env.update(STRIPE_API_KEY="sk_test_dev", STRIPE_API_BASE=stripe.url)
        env.update(STRIPE_WEBHOOK_SECRET=secret)
        _step(console, "Stripe stand-in", f"{stripe.url} (signed webhooks → {api_url})")
    sendgrid = start_sendgrid(servers, env, api_url, real_sendgrid)
    _step(console, "SendGrid" if real_sendgrid else "SendGrid stand-in", sendgrid)
    twilio = start_twilio(servers, env, api_url, _configured(settings, "twilio_account_sid"))
    _step(console, "Twilio stand-in", twilio)

    try:
        upgrade_to_head(settings.database_url)
    except Exception as err:  # driver errors vary; the cause is in the first line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"migrating {redact(settings.database_url)} failed: {first}") from None
    _step(console, "Database", f"{redact(settings.database_url)} (migrated to head)")

    python = sys.executable
    processes.spawn("worker", [python, "-m", "worker"], env, echo=True, quiet=QUIET["worker"])
    uvicorn = [python, "-m", "uvicorn", "starter.app:create_app", "--factory"]
    argv = [*uvicorn, "--host", HOST, "--port", str(API_PORT)]
    processes.spawn("api", argv, env, echo=True, quiet=QUIET["api"])
    wait_until(
        lambda: devtemporal.http_ready(f"{api_url}/readyz"),
        f"the API ({api_url}/readyz)",
        processes,
    )
    _step(console, "Worker and API", f"running; {api_url}/readyz answers 200")

    if not real_stripe and count > 0:
        _demo(console, settings, env, count, api_url, secret)
    _banner(console, real_stripe, codec_url)


def _demo(
    console: Console,
    settings: Settings,
    env: dict[str, str],
    count: int,
    api_url: str,
    secret: str | None,
) -> None:
    from starter.cli import demo

    demo_settings = settings.model_copy(
        update={
            "temporal_address": env["TEMPORAL_ADDRESS"],
            "temporal_namespace": NAMESPACE,
            "dunning_rules": env["DUNNING_RULES"],
        }
    )
    stripe_url = env["STRIPE_API_BASE"]
    recover_after = 20.0

    async def create() -> list[demo.DemoCase]:
        from models.temporal import connect

        client = await connect(demo_settings)
        return await demo.create_cases(
            demo_settings, client, count=count, api_url=api_url, stripe_url=stripe_url,
            webhook_secret=secret, recover_after=recover_after, console=console,
        )  # fmt: skip

    try:
        cases = asyncio.run(create())
    except Exception as err:
        # The stack is up and worth debugging: report and keep running.
        console.print(f"[yellow]demo failed: {err}; the stack keeps running ({DEV_DIR}/logs/)[/]")
        return
    console.print(demo.plan_table(cases))

    async def recover() -> None:
        from models.temporal import connect

        client = await connect(demo_settings)
        await demo.recover(
            demo_settings, client, cases, stripe_url=stripe_url, recover_after=recover_after,
            console=console,
        )  # fmt: skip

    def in_background() -> None:
        # The stack keeps running meanwhile; a failure here is reported, not fatal.
        try:
            asyncio.run(recover())
        except Exception as err:
            console.print(f"[yellow]demo: recovering cases failed: {err}[/]")

    threading.Thread(target=in_background, name="demo-recover", daemon=True).start()


def _bin(name: str) -> str:
    # `make dev` does not put the venv on PATH: show a command that works from here.
    path = Path(sys.executable).parent / name
    if not path.exists() or shutil.which(name) == str(path):
        return name
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def _banner(console: Console, real_stripe: bool, codec_url: str | None) -> None:
    ui = f"http://localhost:{UI_PORT}/namespaces/{NAMESPACE}/workflows?query={quote(UI_QUERY)}"
    rows = [
        ("Temporal UI", ui),
        ("API docs", f"http://localhost:{API_PORT}/docs"),
        ("Experiment", f"http://localhost:{API_PORT}/support/report?days=0&experiment=demo-copy"),
        ("Logs", f"{DEV_DIR}/logs/ (temporal.log, worker.log, api.log)"),
        ("Cases", f"{_bin('temporal')} workflow list --query '{UI_QUERY}'"),
        ("Ops views", f"{_bin('dunning')} list --ui-links   (open, paused, due, recovered, …)"),
    ]
    if codec_url:
        show = f"{_bin('temporal')} workflow show -w dunning-in_… --codec-endpoint {codec_url}"
        rows.append(("Decoded", show))
    if not real_stripe:
        curl = (
            f"curl -X POST http://{HOST}:{STRIPE_PORT}/_standin/scenarios/failed_invoice"
            " -H 'Content-Type: application/json'"
            ' -d \'{"payment_method": "pm_card_chargeDeclinedExpiredCard"}\''
        )
        # DUNNING_ENV=dev: other terminals use the dev key in .dev/ as well.
        demo = f"DUNNING_ENV=dev {_bin('dunning')} demo --count 1   (in another terminal)"
        rows += [("New case", demo), ("or", curl)]
    console.rule("[bold green]The dunning dev stack is up[/] (Ctrl-C stops everything)")
    for name, value in rows:
        # Soft wrap: URLs and commands stay whole, so terminals keep them clickable/copyable.
        console.print(f"[bold]{name:<12}[/] {value}", soft_wrap=True, markup=True)
    console.rule()
