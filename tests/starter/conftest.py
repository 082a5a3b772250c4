"""Fixtures of the starter tests: a real headless Chromium for the pages' browser tests, and
a signing client of the webhook endpoint with the cases it leaves running.

Chromium comes from Debian (`apt-get install -y chromium`) and the driver from PyPI
(`pip install playwright`); `playwright install` is never run, so no browser is downloaded.
A missing browser fails these tests with those commands: a skipped browser test would look green.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger
from starter.app import create_app
from tests.starter.payloads import SECRET
from tests.starter.webhook_client import Api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",  # the app is on 127.0.0.1; a proxy from the environment must not apply
]


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium`"
            " (Debian's package; `make install` does this when it is missing)",
            pytrace=False,
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(
            "The playwright Python package is missing: `.venv/bin/pip install playwright`"
            " (or `make install`). Never `playwright install`: it downloads browsers.",
            pytrace=False,
        )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


# The webhook endpoint's tests (test_webhook*.py).


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "stripe_webhook_secret": SECRET,
            # Nobody polls this queue: cases stay Running with what they received.
            "dunning_task_queue": f"webhooks-{uuid.uuid4().hex[:8]}",
        }
    )


@pytest.fixture
async def idle_cases() -> AsyncIterator[list[tuple[Client, str]]]:
    """(client, workflow id) of cases left Running by a test, terminated afterwards."""
    ids: list[tuple[Client, str]] = []
    yield ids
    for client, wid in ids:
        try:
            await client.get_workflow_handle(wid).terminate("test over")
        except RPCError:
            pass  # already closed


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger
) -> AsyncIterator[Api]:
    # The dev server, not the time-skipping one, even where no visibility query is needed:
    # a workflow left without a worker there and then terminated keeps time skipping locked
    # for every later test of the session (seen with temporal-test-server 1.40).
    api = Api(create_app(api_settings, client=dev_env.client, ledger=ledger), ledger)
    yield api
    await api.app.state.relay.close()
