"""The dev server's Temporal UI shows a case's decoded input through the codec server, in
Debian's Chromium (tests/starter/conftest.py), as `dunning dev` sets it up."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from models.dunning import DunningInput
from models.settings import Settings
from models.temporal import converter_for
from standins.server import BackgroundServer, free_port
from starter.cases import start_case
from starter.codec_server import create_app
from tests.conftest import TEST_KEYRING, TEST_KEYS
from tests.deadline import eventually
from workflows.search_attributes import ALL_KEYS


@pytest.fixture
async def ui_stack() -> AsyncIterator[tuple[WorkflowEnvironment, str, list[str]]]:
    """A dev server whose UI decodes through an open (dev-mode) codec server."""
    ui_port = free_port()
    ui = f"http://localhost:{ui_port}"
    settings = Settings(
        dunning_encryption_keys=TEST_KEYS, dunning_env="dev", temporal_ui_url=ui,
        _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    calls: list[str] = []
    app = create_app(settings)

    @app.middleware("http")
    async def count(request: Any, call_next: Any) -> Any:
        calls.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    with BackgroundServer(app) as codec:
        env = await WorkflowEnvironment.start_local(
            data_converter=converter_for(TEST_KEYRING),
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            search_attributes=ALL_KEYS,
            ui=True,
            ui_port=ui_port,
            dev_server_extra_args=["--ui-codec-endpoint", codec.url],
        )
        try:
            yield env, ui, calls
        finally:
            await env.shutdown()


async def test_the_dev_ui_shows_decoded_payloads(
    chromium: Any, ui_stack: tuple[WorkflowEnvironment, str, list[str]], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    env, ui, calls = ui_stack
    marker = f"evt_decoded_{uuid.uuid4().hex[:8]}"
    case = DunningInput(
        invoice_id=f"in_ui_{uuid.uuid4().hex[:8]}", customer_id="cus_ui", amount_due=4200,
        currency="eur", stripe_event_id=marker,
    )  # fmt: skip
    # No worker needed: the start alone records the (encrypted) input.
    handle = await start_case(env.client, case, "ui-test")
    page = await chromium.new_page(viewport={"width": 1400, "height": 1600})
    url = f"{ui}/namespaces/{env.client.namespace}/workflows/{handle.id}"

    async def loaded() -> int:
        # The dev server is up before its UI can reach it: until then the UI answers its own
        # 500 page ("Internal Error"), which no wait for the input would get past.
        response = await page.goto(url)
        return response.status if response is not None else 0

    await eventually(loaded, lambda status: status == 200, within=60, interval=0.5, what="UI")
    try:
        # Auto-waiting: the UI loads, asks the codec server, then renders the input.
        await expect(page.get_by_text(marker).first).to_be_visible(timeout=60_000)
    except AssertionError:
        await page.screenshot(path=tmp_path / "ui.png", full_page=True)
        raise AssertionError(f"decoded input not shown (screenshot in {tmp_path})") from None
    await page.screenshot(path=tmp_path / "ui.png", full_page=True)
    assert "POST /decode" in calls
    await handle.terminate("test done")
