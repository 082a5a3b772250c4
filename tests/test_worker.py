"""worker.py: search attributes registration and graceful shutdown as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.temporal import ensure_search_attributes
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent


async def test_search_attribute_registration_is_idempotent(dev_env: WorkflowEnvironment) -> None:
    # The dev server fixture registered them at start; asking again adds nothing.
    assert await ensure_search_attributes(dev_env.client, dev_env.client.namespace, ALL_KEYS) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_worker_process_starts_and_stops_gracefully(
    dev_env: WorkflowEnvironment, settings: Settings, sig: signal.Signals
) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": settings.database_url,
        "STRIPE_API_BASE": settings.stripe_api_base or "",
        "SENDGRID_API_HOST": settings.sendgrid_api_host or "",
        "DUNNING_TASK_QUEUE": "worker-process-test",
        "WORKER_SHUTDOWN_SECONDS": "5",
    }
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
