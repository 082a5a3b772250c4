"""The dev server's Temporal UI shows a case's decoded input through the codec server, in
Debian's Chromium (tests/starter/conftest.py), as `dunning dev` sets it up."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
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

    decoded, failed = page.get_by_text(marker).first, page.get_by_text("Internal Error")

    async def shown() -> bool:
        # The dev server answers before its UI can reach it: until then the UI renders its own
        # error page ("Internal Error"), which no wait for the input would get past. Load the
        # page again until it shows the case (auto-waiting: the UI loads, asks the codec
        # server, then renders the input) or the deadline passes.
        await page.goto(url)
        await expect(decoded.or_(failed)).to_be_visible(timeout=60_000)
        return await decoded.is_visible()

    try:
        await eventually(shown, within=90, interval=1, what="the decoded input in the UI")
    except AssertionError:
        await page.screenshot(path=tmp_path / "ui.png", full_page=True)
        api = f"{ui}/api/v1/namespaces/{env.client.namespace}/workflows/{handle.id}"
        async with httpx.AsyncClient(timeout=10) as http:
            answers = [f"{path}: {(await http.get(path)).status_code}" for path in (url, api)]
        raise AssertionError(
            f"decoded input not shown (screenshot in {tmp_path}; {', '.join(answers)})"
        ) from None
    await page.screenshot(path=tmp_path / "ui.png", full_page=True)
    assert "POST /decode" in calls
    await handle.terminate("test done")
