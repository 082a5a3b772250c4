"""`/docs` renders in Chromium with every request off this machine blocked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from models.settings import Settings
from models.store import Ledger
from standins.server import BackgroundServer
from starter.app import create_app


async def test_api_docs_render_offline(chromium: Any, settings: Settings, ledger: Ledger) -> None:
    from playwright.async_api import Route, expect

    app = create_app(settings.model_copy(update={"dunning_env": "dev"}), ledger=ledger)
    blocked: list[str] = []

    async def local_only(route: Route) -> None:
        # As on a machine without internet: anything not served by the app itself fails.
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    with BackgroundServer(app) as server:
        page = await chromium.new_page()
        await page.route("**/*", local_only)
        await page.goto(f"{server.url}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Dunning service")
        await expect(page.get_by_text("/webhooks/stripe").first).to_be_visible()
    assert blocked == []
