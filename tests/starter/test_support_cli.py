"""`dunning status | list | grace | pause | resume | retry-now | stop` on a real dev server.

The commands run `asyncio.run` themselves, so CliRunner runs in a thread while this loop keeps
the worker going; the commands find the dev server through TEMPORAL_ADDRESS, as users do.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from models.dunning import DunningState, GrantGraceResult, SupportActionResult
from models.ledger import SupportAction
from models.settings import Settings, get_settings
from models.store import Ledger
from policies.loader import POLICY_DIR
from standins.server import free_port
from starter.cases import start_case
from starter.cli import app
from starter.cli import support as support_commands
from starter.support.service import CaseSummary
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.workflows.helpers import INSUFFICIENT, history_length, ledger_rows, open_case

POLICY = str(POLICY_DIR / "default.yaml")
STATE_KEYS = set(DunningState.model_fields)
ACTION_KEYS = set(SupportActionResult.model_fields)
GRACE_KEYS = set(GrantGraceResult.model_fields)


@pytest.fixture
def cli(
    dev_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
    monkeypatch.chdir(tmp_path)  # no developer .env (so the worker needs an absolute policy)
    yield CliRunner()
    get_settings.cache_clear()


async def dunning(cli: CliRunner, *args: str) -> Result:
    return await asyncio.to_thread(lambda: cli.invoke(app, list(args)))


def flat(output: str) -> str:
    """Rich output without box drawing and line wrapping, for substring checks."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", output)


def one_line_error(result: Result) -> str:
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


async def wait_for(check: Any, what: str) -> Any:
    """The first truthy value of `check()`, polled against tests/deadline.py's deadline."""
    return await eventually(check, what=what)


def test_help_lists_the_support_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=120)
    assert result.exit_code == 0
    for name in ("status", "list", "grace", "pause", "resume", "retry-now", "stop"):
        assert f" {name} " in result.output


async def test_every_action_prints_the_new_state_and_is_audited(
    cli: CliRunner, dev_env: WorkflowEnvironment, run_worker, settings: Settings, ledger: Ledger
) -> None:
    async with run_worker(dev_env.client, dunning_policy=POLICY) as task_queue:
        case, handle = await open_case(dev_env.client, settings, task_queue)
        inv = case.invoice

        shown = await dunning(cli, "status", inv)
        assert shown.exit_code == 0, shown.output
        text = flat(shown.output)
        for piece in (f"Dunning {inv}", "Status active", "Step 0/5", "Attempts 0", "Grace none"):
            assert piece in text
        assert "Final deadline cancel_subscription at" in text
        assert "Last decline insufficient_funds" in text
        assert f"Temporal UI: http://localhost:8233/namespaces/default/workflows/dunning-{inv}" in (
            shown.output
        )

        as_json = await dunning(cli, "status", inv, "--json")
        before = DunningState.model_validate_json(as_json.stdout)
        assert set(json.loads(as_json.stdout)) == STATE_KEYS
        assert before.final_deadline is not None

        granted = await dunning(
            cli, "grace", inv, "--days", "3", "--reason", "asked", "--by", "ann"
        )
        assert granted.exit_code == 0, granted.output
        deadline = before.final_deadline + timedelta(days=3)
        # Once, in the reader's time zone (TZ; UTC on this machine's tests), with the zone.
        local = deadline.astimezone()
        assert granted.output.count(f"{local:%Y-%m-%d %H:%M %Z}") == 1, granted.output
        assert f"New final deadline: {local:%Y-%m-%d %H:%M %Z}" in granted.output
        assert "+3d by ann" in flat(granted.output)

        more = await dunning(
            cli, "grace", inv, "--days", "2", "--reason", "r", "--by", "ann", "--json"
        )
        body = json.loads(more.stdout)
        assert set(body) == GRACE_KEYS and set(body["state"]) == STATE_KEYS
        assert (body["action"], body["state"]["grace_days_total"]) == ("grant_grace", 5)

        paused = await dunning(cli, "pause", inv, "--reason", "disputed", "--by", "bob")
        assert paused.exit_code == 0, paused.output
        assert "Status paused" in flat(paused.output) and "Paused disputed" in flat(paused.output)
        again = await dunning(cli, "pause", inv, "--reason", "disputed", "--by", "bob")
        assert again.exit_code == 2
        assert "rejected: the case is already paused" in one_line_error(again)

        resumed = await dunning(cli, "resume", inv, "--by", "bob", "--json")
        body = json.loads(resumed.stdout)
        assert set(body) == ACTION_KEYS and body["state"]["status"] == "active"

        retried = await dunning(cli, "retry-now", inv, "--by", "cy")
        assert retried.exit_code == 0, retried.output
        assert "a charge attempt runs now" in flat(retried.output)

        stopped = await dunning(cli, "stop", inv, "--reason", "written off", "--by", "dee")
        assert stopped.exit_code == 0, stopped.output
        assert "Status stopped (stopped)" in flat(stopped.output)
        await handle.result()

        async def audited() -> list[tuple[Any, ...]]:
            rows = ledger_rows(ledger, SupportAction, inv)
            return [(r.action, r.by, r.reason, r.days) for r in rows] if len(rows) == 6 else []

        assert await wait_for(audited, "six support_actions rows") == [
            ("grant_grace", "ann", "asked", 3),
            ("grant_grace", "ann", "r", 2),
            ("pause", "bob", "disputed", None),
            ("resume", "bob", None, None),
            ("retry_now", "cy", None, None),
            ("stop", "dee", "written off", None),
        ]


async def test_rejected_grace_exits_2_with_the_validators_message_and_no_event(
    cli: CliRunner, dev_env: WorkflowEnvironment, run_worker, settings: Settings
) -> None:
    async with run_worker(dev_env.client, dunning_policy=POLICY) as task_queue:
        case, handle = await open_case(dev_env.client, settings, task_queue)
        events = await history_length(handle)
        for days, message in (
            ("0", "must be at least 1 day"),
            ("15", "is limited to 14 days per grant"),
        ):
            args = ["grace", case.invoice, "--days", days, "--reason", "r", "--by", "ann"]
            result = await dunning(cli, *args)
            assert result.exit_code == 2
            assert f"rejected: grace {message}" in one_line_error(result)
        assert await history_length(handle) == events


async def test_unknown_invoice_exits_3(cli: CliRunner) -> None:
    for args in (["status", "in_missing"], ["resume", "in_missing", "--by", "ann"]):
        result = await dunning(cli, *args)
        assert result.exit_code == 3
        assert "no dunning case exists for invoice in_missing" in one_line_error(result)


async def test_unreachable_temporal_is_one_line_and_exit_1(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    for args in (["status", "in_x"], ["list"], ["stop", "in_x", "--reason", "r", "--by", "b"]):
        result = await dunning(cli, *args)
        assert result.exit_code == 1
        assert f"cannot reach Temporal at {address}" in one_line_error(result)


async def test_list_filters_by_status_customer_and_due_time(
    cli: CliRunner, dev_env: WorkflowEnvironment, run_worker, settings: Settings
) -> None:
    async def rows(*args: str) -> list[dict[str, Any]]:
        result = await dunning(cli, "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return list(json.loads(result.stdout))

    async with run_worker(dev_env.client, dunning_policy=POLICY) as task_queue:
        (paused, _), (active, _) = [
            await open_case(dev_env.client, settings, task_queue) for _ in range(2)
        ]
        result = await dunning(cli, "pause", paused.invoice, "--reason", "r", "--by", "ann")
        assert result.exit_code == 0, result.output

        # Visibility follows the workflow's search attributes a moment later.
        async def listed() -> list[dict[str, Any]]:
            found = await rows("--status", "paused", "--customer", paused.customer)
            return found if [r["invoice_id"] for r in found] == [paused.invoice] else []

        (row,) = await wait_for(listed, "the paused case listed")
        assert set(row) == set(CaseSummary.model_fields)
        assert (row["customer_id"], row["workflow_status"]) == (paused.customer, "running")
        assert await rows("--status", "active", "--customer", paused.customer) == []
        # The active case's first step is a day away; a paused case has no next action.
        due = await wait_for(
            lambda: rows("--customer", active.customer, "--due-within", "2d"), "due"
        )
        assert [r["invoice_id"] for r in due] == [active.invoice]
        assert await rows("--customer", active.customer, "--due-within", "1h") == []
        assert await rows("--customer", paused.customer, "--due-within", "30d") == []

        table = await dunning(cli, "list", "--customer", active.customer)
        assert active.invoice in table.output and "active" in table.output
        empty = await dunning(cli, "list", "--customer", "cus_nobody")
        assert "No dunning cases match." in empty.output


async def test_no_worker_is_one_line_and_exit_1_instead_of_waiting_for_ever(
    cli: CliRunner, dev_env: WorkflowEnvironment, settings: Settings, monkeypatch
) -> None:
    case = StripeControl(settings).failed_invoice(INSUFFICIENT)
    await start_case(dev_env.client, case.dunning_input(), "no-worker-polls-this")
    monkeypatch.setattr(support_commands, "ANSWER_SECONDS", 1.0)
    for args in (["status", case.invoice], ["retry-now", case.invoice, "--by", "ann"]):
        result = await dunning(cli, *args)
        assert result.exit_code == 1
        assert "no answer within 1s: is a worker" in one_line_error(result)
    await dev_env.client.get_workflow_handle(f"dunning-{case.invoice}").terminate("test over")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "late"], "'late' is not one of"),
        (["--due-within", "soon"], "invalid duration"),
        (["--customer", "x' OR 1=1"], "quote"),
    ],
)
async def test_list_refuses_bad_filters_as_usage_errors(
    cli: CliRunner, args: list[str], message: str
) -> None:
    result = await dunning(cli, "list", *args)
    assert result.exit_code == 2
    assert message in flat(result.output)


async def test_the_same_request_id_grants_grace_once(
    cli: CliRunner, dev_env: WorkflowEnvironment, run_worker, settings: Settings, ledger: Ledger
) -> None:
    async with run_worker(dev_env.client, dunning_policy=POLICY) as task_queue:
        case, _ = await open_case(dev_env.client, settings, task_queue)
        grace = ["grace", case.invoice, "--days", "2", "--reason", "r", "--by", "ann", "--json"]
        runs = [await dunning(cli, *grace, "--request-id", "ticket-9") for _ in range(2)]
        bad = await dunning(cli, *grace, "--request-id", "tab\there")
        rows = await wait_for(  # written by an activity: wait while the worker runs
            lambda: asyncio.to_thread(ledger_rows, ledger, SupportAction, case.invoice), "audit"
        )

    assert [r.exit_code for r in runs] == [0, 0], runs[0].output
    first, again = (json.loads(r.stdout) for r in runs)
    assert first == again and first["state"]["grace_days_total"] == 2
    assert bad.exit_code == 2
    assert "--request-id: the request id may hold only printable ASCII" in flat(bad.output)
    assert [(r.action, r.days) for r in rows] == [("grant_grace", 2)]
