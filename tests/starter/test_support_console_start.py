"""The console's start page lists open cases, soonest first; case pages explain in words."""

from __future__ import annotations

import re
from typing import Any

from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger
from starter.cases import start_case
from starter.support import service as svc
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.starter.test_support_console import console, logged_in
from tests.workflows.helpers import EXPIRED, INSUFFICIENT


async def test_start_page_lists_open_cases_paused_then_soonest(
    dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings, ledger: Ledger
) -> None:
    client = dev_env.client
    http = await logged_in(console(settings, ledger, client))
    stripe = StripeControl(settings)
    soft, hard = stripe.failed_invoice(INSUFFICIENT), stripe.failed_invoice(EXPIRED)

    async with run_worker(client) as task_queue:
        for case in (soft, hard):
            await start_case(client, case.dunning_input(), task_queue)

        async def attention() -> list[str]:
            page = (await http.get("/support")).text
            section = page[page.index('id="attention"') :]
            return re.findall(r'href="/support/cases/([^"]+)"', section)

        await eventually(
            attention, lambda ids: {soft.invoice, hard.invoice} <= set(ids), what="listed"
        )
        # A paused case waits for someone: it comes first, whatever its next action's time.
        hard_page = await eventually(
            lambda: _text(http, f"/support/cases/{hard.invoice}"),
            lambda page: "the customer needs a new card" in page,
            what="decline class in words",
        )
        payload = svc.action_input("pause", reason="customer on the phone", by="ann")
        await svc.run_action(client, hard.invoice, "pause", payload)
        await eventually(
            attention,
            lambda ids: ids.index(hard.invoice) < ids.index(soft.invoice),
            what="paused case first",
        )
        assert '<time datetime="' in hard_page  # console.js shows it in the reader's zone
        searched = (await http.get("/support", params={"q": soft.invoice})).text
        assert 'id="attention"' not in searched  # a search shows its results only


async def _text(http: Any, url: str) -> str:
    return str((await http.get(url)).text)
