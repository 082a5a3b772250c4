"""worker.py as a real process: search attributes registration, graceful shutdown, and the
claim sweep it runs after each reconciliation."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from temporalio.testing import WorkflowEnvironment

from models.ledger import Notification, utcnow
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from models.temporal import ensure_search_attributes
from tests.deadline import eventually
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent


async def test_search_attribute_registration_is_idempotent(dev_env: WorkflowEnvironment) -> None:
    # The dev server fixture registered them at start; asking again adds nothing.
    assert await ensure_search_attributes(dev_env.client, dev_env.client.namespace, ALL_KEYS) == []


def worker_env(dev_env: WorkflowEnvironment, settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": settings.database_url,
        "STRIPE_API_BASE": settings.stripe_api_base or "",
        "SENDGRID_API_HOST": settings.sendgrid_api_host or "",
        "DUNNING_TASK_QUEUE": "worker-process-test",
        "WORKER_SHUTDOWN_SECONDS": "5",
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_worker_process_starts_and_stops_gracefully(
    dev_env: WorkflowEnvironment, settings: Settings, sig: signal.Signals
) -> None:
    env = worker_env(dev_env, settings)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "worker.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while "Worker on" not in (line := (await process.stdout.readline()).decode()):
            assert line, f"worker exited early: {''.join(lines)}"
            lines.append(line)
    process.send_signal(sig)
    async with asyncio.timeout(15):
        output = (await process.stdout.read()).decode()
        code = await process.wait()
    assert code == 0, output
    assert "Shutting down" in output


async def test_a_bad_policy_stops_the_worker_with_the_file_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nmax_attempts: lots\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "worker.py",
        cwd=ROOT,
        env={**os.environ, "DUNNING_POLICY": str(bad)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(30):
        output = (await process.communicate())[0].decode()
    assert process.returncode == 2
    assert str(bad) in output and "max_attempts" in output
    assert "Traceback" not in output


async def test_the_worker_sweeps_a_dead_sends_claim_in_a_closed_case(
    dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    # A case whose workflow Temporal does not know (closed), and the claim its send left when
    # the worker died before SendGrid took the message: the worker's first sweep settles it.
    invoice = f"in_sweep_{uuid.uuid4().hex[:10]}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_sweep",
        subscription_id=None, customer_email="ada@example.com", customer_name="Ada",
        amount_due=1200, currency="eur", policy="default", opened_at=utcnow(),
    )  # fmt: skip
    key = f"dunning-{invoice}:step:2"
    store = NotificationStore(ledger.sessions)
    store.claim(attempt=1, invoice_id=invoice, dedupe_key=key, template="reminder",
                to_address="ada@example.com")  # fmt: skip
    with ledger.sessions.begin() as session:  # claimed long ago: the oldest the sweep sees
        session.execute(
            update(Notification)
            .where(Notification.dedupe_key == key)
            .values(created_at=utcnow() - timedelta(days=365))
        )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=worker_env(dev_env, settings),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:

        async def status() -> str:
            with ledger.sessions() as session:
                row = session.scalars(select(Notification).where(Notification.dedupe_key == key))
                return row.one().status

        await eventually(status, lambda s: s == "withdrawn", within=60, what="claim swept")
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
