"""Customer preferences: `dunning customer set|show`, the API, and what a new case reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities.stripe_billing import StripeActivities
from models.preferences import PreferenceStore
from models.settings import Settings, get_settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from policies.loader import POLICY_DIR
from starter.app import create_app
from starter.cases import start_case
from starter.cli import app
from starter.cli.customers import EXIT_REFUSED
from tests.activities.test_stripe_billing import opening
from tests.workflows.helpers import INSUFFICIENT, advance_until

TOKEN = {"Authorization": "Bearer test-support-token"}


@pytest.fixture
def cli(
    dev_env: WorkflowEnvironment, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no developer .env
    yield CliRunner()
    get_settings.cache_clear()


async def dunning(cli: CliRunner, *args: str) -> Result:
    return await asyncio.to_thread(lambda: cli.invoke(app, list(args), terminal_width=200))


def customer_id() -> str:
    return f"cus_pref{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channels", "email,fax"], "unknown channel fax"),
        (["--tz", "Europe/Atlantis"], "unknown time zone"),
        (["--phone", "12345"], "is not a phone number"),
        (["--locale", "xx-YY-ZZ"], "unknown locale"),
        (["--opt-out", "sms", "--opt-in", "sms"], "cannot be opted out and in at once"),
    ],
)
async def test_a_refused_value_exits_2_and_stores_nothing(
    cli: CliRunner, ledger: Ledger, args: list[str], message: str
) -> None:
    customer = customer_id()
    result = await dunning(cli, "customer", "set", customer, "--by", "alice", *args)
    assert result.exit_code == EXIT_REFUSED, result.output
    assert message in result.output
    assert PreferenceStore(ledger.sessions).get(customer) is None


async def test_set_then_show_and_a_new_case_opens_with_them(
    cli: CliRunner, ledger: Ledger, stripe_control, settings: Settings
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.customers.update(case.customer, params={"preferred_locales": ["en"]})
    result = await dunning(
        cli, "customer", "set", case.customer, "--by", "alice", "--channels", "sms,email",
        "--phone", "+34 600 111 222", "--tz", "Europe/Madrid", "--locale", "es",
        "--opt-out", "in_app",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = await dunning(cli, "customer", "show", case.customer, "--json")
    assert (
        '"phone": "+34600111222"' in shown.output and '"opted_out": [\n    "in_app"' in shown.output
    )

    stripe = StripeActivities(
        make_stripe_client(settings), ledger, str(POLICY_DIR / "default.yaml")
    )
    context = stripe.get_invoice_context(opening(case))
    assert (context.locale, context.timezone, context.phone) == (
        "es",
        "Europe/Madrid",
        "+34600111222",
    )
    assert context.preferred_channels == ["sms", "email"]
    assert context.opted_out_channels == ["in_app"]


async def test_an_opt_out_reaches_the_running_case_at_once(
    cli: CliRunner, dev_env: WorkflowEnvironment, run_worker, stripe_control, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    policy = str(POLICY_DIR / "default.yaml")  # the CLI fixture runs in a temporary dir
    async with run_worker(dev_env.client, dunning_policy=policy) as task_queue:
        handle = await start_case(dev_env.client, case.dunning_input(), task_queue)
        await advance_until(dev_env, handle, lambda s: s.total_steps > 0, step=timedelta(0))
        result = await dunning(
            cli, "customer", "set", case.customer, "--by", "bob", "--opt-out", "sms"
        )
        assert result.exit_code == 0, result.output
        assert f"running cases told: {case.invoice}" in result.output
        history = await handle.fetch_history()
        await handle.terminate("test done")
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert "channel_opt_out" in signals


async def test_the_api_reads_and_changes_them_behind_the_support_token(
    dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    customer = customer_id()
    api = create_app(settings, client=dev_env.client, ledger=ledger)
    url = f"/api/customers/{customer}/preferences"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://testserver"
    ) as http:
        assert (await http.get(url)).status_code == 401
        bad = await http.put(url, headers=TOKEN, json={"timezone": "Mars/Base", "by": "a"})
        assert bad.status_code == 400 and "unknown time zone" in bad.json()["error"]
        put = await http.put(url, headers=TOKEN, json={"locale": "es-MX", "by": "alice"})
        assert put.status_code == 200, put.text
        got = (await http.get(url, headers=TOKEN)).json()
    await api.state.relay.close()
    assert (got["locale"], got["channels"], got["opted_out"]) == ("es-MX", [], [])
