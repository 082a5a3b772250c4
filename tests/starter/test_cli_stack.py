"""`dunning dev | worker | api | migrate | demo`, through typer's CliRunner (in process)."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from models.dunning import CaseStatus
from models.settings import Settings, get_settings
from policies.loader import POLICY_DIR
from standins.server import BackgroundServer, free_port
from standins.stripe_api import create_app as create_stripe_app
from starter.cases import case_handle
from starter.cli import app, processes
from starter.cli import demo as demo_logic
from starter.cli.devtemporal import temporal_argv
from tests.deadline import eventually_sync
from workflows.dunning import DunningWorkflow
from workflows.search_attributes import ALL_KEYS

COMMANDS = ["dev", "worker", "api", "migrate", "demo"]
SECRET = "whsec_cli_demo_test"
# Settings come from the environment; keep the developer's own from leaking into tests.
ENV_NAMES = ("DATABASE_URL", "TEMPORAL_ADDRESS", "DUNNING_POLICY", "STRIPE_WEBHOOK_SECRET")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env, and any .dev/ lands in tmp_path
    yield CliRunner()
    get_settings.cache_clear()


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: "), output
    return lines[0]


@pytest.mark.parametrize("args", [[], *([name] for name in COMMANDS)])
def test_help_of_every_command(cli: CliRunner, args: list[str]) -> None:
    result = cli.invoke(app, [*args, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "Usage: dunning" in result.output
    if not args:
        for name in COMMANDS:
            assert name in result.output


def test_migrate_creates_the_tables_on_a_fresh_sqlite_file(cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh/dunning.db"
    result = cli.invoke(app, ["migrate"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert url in result.output.replace("\n", "")
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert {"alembic_version", "cases", "attempts", "notifications", "outcomes"} <= tables
    # Running it again is a no-op, not an error.
    assert cli.invoke(app, ["migrate"], env={"DATABASE_URL": url}).exit_code == 0


def test_migrate_failure_is_one_line_without_the_password(cli: CliRunner) -> None:
    url = f"postgresql+psycopg2://dunning:s3cr3t@127.0.0.1:{free_port()}/dunning"
    result = cli.invoke(app, ["migrate"], env={"DATABASE_URL": url})
    assert result.exit_code == 1
    assert "s3cr3t" not in result.output
    assert "dunning:***@127.0.0.1" in result.output
    assert "Traceback" not in result.output


def test_worker_with_temporal_unreachable_is_one_clear_line(cli: CliRunner) -> None:
    env = {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "DUNNING_POLICY": str(POLICY_DIR / "demo.yaml"),
    }
    result = cli.invoke(app, ["worker"], env=env)
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert f"cannot reach Temporal at {env['TEMPORAL_ADDRESS']} (connection refused)" in line


def test_worker_with_a_bad_policy_file_names_it(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad Name\nsteps: []\n")
    result = cli.invoke(app, ["worker"], env={"DUNNING_POLICY": str(bad)})
    assert result.exit_code == 1
    assert "bad policy file" in _one_line_error(result.output)
    assert str(bad) in result.output.replace("\n", "")


def test_invalid_setting_is_one_line(cli: CliRunner) -> None:
    result = cli.invoke(app, ["worker"], env={"STRIPE_TIMEOUT_SECONDS": "-1"})
    assert result.exit_code == 1
    assert "STRIPE_TIMEOUT_SECONDS" in _one_line_error(result.output)


def test_api_refuses_to_serve_unverifiable_webhooks_in_production(cli: CliRunner) -> None:
    result = cli.invoke(app, ["api"], env={"DUNNING_ENV": "production"})
    assert result.exit_code == 1
    line = _one_line_error(result.output)
    assert "STRIPE_WEBHOOK_SECRET is not set" in line


def test_bad_usage_exits_2(cli: CliRunner) -> None:
    assert cli.invoke(app, ["demo", "--count", "0"]).exit_code == 2
    assert cli.invoke(app, ["nope"]).exit_code == 2


def test_demo_without_a_stand_in_is_one_line(cli: CliRunner) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli.invoke(app, ["demo", "--stripe", url], env={"TEMPORAL_ADDRESS": "x:1"})
    assert result.exit_code == 1
    assert "Stripe stand-in is not reachable" in _one_line_error(result.output)


def test_demo_roles_show_every_story() -> None:
    roles = demo_logic.roles
    assert roles(1) == [demo_logic.Role.CANCEL]
    assert roles(2) == [demo_logic.Role.RECOVER, demo_logic.Role.CANCEL]
    six = roles(6)
    assert six.count(demo_logic.Role.GRACE) == 1
    assert six.count(demo_logic.Role.RECOVER) == 3
    assert six.count(demo_logic.Role.CANCEL) == 2


def test_temporal_dev_server_gets_every_search_attribute_with_its_type() -> None:
    argv = temporal_argv("temporal", 7233, 8233, "default")
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--search-attribute"]
    assert len(pairs) == len(ALL_KEYS)
    assert {"DunningStatus=Keyword", "DunningStep=Int", "NextActionAt=Datetime"} <= set(pairs)
    assert argv[argv.index("--db-filename") + 1] == ".dev/temporal.db"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its reaper is late


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_stop_kills_the_whole_group_even_when_sigterm_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(processes, "STOP_SECONDS", 0.5)
    procs = processes.Processes(Console(file=io.StringIO()))
    # A shell ignoring SIGTERM, with a grandchild (inheriting that) in its process group.
    script = "trap '' TERM; sleep 60 & echo $!; wait"
    child = procs.spawn("stubborn", ["sh", "-c", script], dict(os.environ), echo=False)
    eventually_sync(lambda: child.tail, within=10, what="the child's first line")
    grandchild = int(child.tail[0])
    started = time.monotonic()
    procs.stop(("stubborn",))
    assert time.monotonic() - started < 5
    assert not child.running
    eventually_sync(lambda: not _alive(grandchild), within=5, what="the grandchild stopped")
    assert (tmp_path / ".dev" / "logs" / "stubborn.log").read_text().strip() == str(grandchild)


@asynccontextmanager
async def _api(settings: Settings, client: Client, ledger: Any) -> AsyncIterator[str]:
    from starter.app import create_app

    server = BackgroundServer(create_app(settings, client=client, ledger=ledger)).start()
    try:
        yield server.url
    finally:
        server.stop()


async def test_demo_cases_recover_get_grace_and_stay_open(
    dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings, ledger: Any
) -> None:
    with BackgroundServer(create_stripe_app()) as stripe:
        overrides = {"stripe_api_base": stripe.url, "dunning_policy": str(POLICY_DIR / "demo.yaml")}
        async with run_worker(dev_env.client, **overrides) as task_queue:
            api_settings = settings.model_copy(
                update={
                    **overrides,
                    "dunning_task_queue": task_queue,
                    "stripe_webhook_secret": SECRET,
                    "dunning_env": "dev",
                }
            )
            async with _api(api_settings, dev_env.client, ledger) as api_url:
                console = Console(record=True, width=200)
                cases = await demo_logic.create_cases(
                    api_settings, dev_env.client, count=3, api_url=api_url,
                    stripe_url=stripe.url, webhook_secret=SECRET, recover_after=0,
                    console=console,
                )  # fmt: skip
                console.print(demo_logic.plan_table(cases))
                await demo_logic.recover(
                    api_settings, dev_env.client, cases, stripe_url=stripe.url,
                    recover_after=0, console=console,
                )  # fmt: skip
                states = {
                    case.role: await case_handle(dev_env.client, case.invoice).query(
                        DunningWorkflow.status
                    )
                    for case in cases
                }
                for case in cases:  # leave no open case behind on the shared dev server
                    with contextlib.suppress(RPCError):
                        await case_handle(dev_env.client, case.invoice).terminate("test done")
    text = console.export_text()
    assert states[demo_logic.Role.RECOVER].status == CaseStatus.RECOVERED, text
    assert states[demo_logic.Role.GRACE].grace_days_total == 3, text
    assert "support grants 3 days of grace" in text
    assert states[demo_logic.Role.CANCEL].status == CaseStatus.ACTIVE, text
    assert all(case.invoice in text for case in cases)
