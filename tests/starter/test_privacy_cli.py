"""`dunning forget` and `dunning encryption-key` as users run them (exit codes included)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from models.codec import parse_keyring
from models.dunning import DunningInput
from models.ledger import Case
from models.settings import get_settings
from models.store import Ledger
from starter.cases import start_case
from starter.cli import app
from starter.cli.privacy import EXIT_REFUSED
from tests.deadline import eventually
from tests.models.test_erasure import rows, seed_customer


@pytest.fixture
def cli(
    dev_env: WorkflowEnvironment,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[CliRunner]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no developer .env
    yield CliRunner()
    get_settings.cache_clear()


async def dunning(cli: CliRunner, *args: str) -> Result:
    # The command runs asyncio.run itself: in a thread, beside this test's loop.
    return await asyncio.to_thread(lambda: cli.invoke(app, list(args), terminal_width=200))


async def test_forget_scrubs_a_closed_customer(cli: CliRunner, ledger: Ledger) -> None:
    customer, invoice = seed_customer(ledger)
    result = await dunning(cli, "forget", customer)
    assert result.exit_code == 0, result.output
    assert f"Forgot {customer}: 1 case(s) ({invoice})" in result.output
    (case,) = rows(ledger, Case, invoice)
    assert case.customer_email is None and case.amount_due == 4900


async def test_forget_refuses_a_customer_with_a_running_case(
    cli: CliRunner, ledger: Ledger, dev_env: WorkflowEnvironment
) -> None:
    # Open in the ledger: refused without asking Temporal to agree.
    customer, invoice = seed_customer(ledger, closed=False)
    result = await dunning(cli, "forget", customer)
    assert result.exit_code == EXIT_REFUSED, result.output
    assert f"{customer} has running cases ({invoice})" in result.output
    # Running in Temporal but not yet in the ledger (a case still opening): refused too.
    opening = DunningInput(
        invoice_id=f"{invoice}_b", customer_id=f"{customer}_b", amount_due=100, currency="eur"
    )
    handle = await start_case(dev_env.client, opening, "no-worker-here")
    try:

        async def refused() -> Result:
            return await dunning(cli, "forget", f"{customer}_b")

        # Visibility is eventually consistent: the new case is listed a moment later.
        late = await eventually(refused, lambda r: r.exit_code == EXIT_REFUSED, within=15)
        assert f"{invoice}_b" in late.output
    finally:
        await handle.terminate("test done")


async def test_forget_refuses_what_is_not_a_customer_id(cli: CliRunner) -> None:
    result = await dunning(cli, "forget", "cus_x' OR 1=1")
    assert result.exit_code == EXIT_REFUSED
    assert "is not a Stripe customer id" in result.output


async def test_encryption_key_prints_a_usable_pair(cli: CliRunner) -> None:
    result = await dunning(cli, "encryption-key", "--id", "k7")
    assert result.exit_code == 0, result.output
    keyring = parse_keyring(result.output.strip())
    assert keyring.ids == ["k7"] and len(keyring.keys["k7"]) == 32
    assert (await dunning(cli, "encryption-key", "--id", "bad id")).exit_code == 2
