"""A case terminated outside its workflow shows its real end everywhere (issue 8, item 2).

Terminated on a real dev server (visibility is needed), then reconciled: the ledger, the
search-attribute list, the status query, the console, the report and support actions must all
say the case ended, not that it is still active.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, Outcome
from models.ledger import Case, CaseOutcome
from models.reconcile import reconcile
from models.settings import Settings
from models.store import Ledger
from starter.app import create_app
from starter.support import service as svc
from starter.support.report import compute_report
from tests.deadline import eventually
from tests.workflows.helpers import ledger_rows, open_case

TOKEN = "reconcile-test-token"


async def test_a_terminated_case_is_closed_everywhere(
    dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings, ledger: Ledger
) -> None:
    client = dev_env.client
    async with run_worker(client) as task_queue:
        case, handle = await open_case(client, settings, task_queue)
        inv = case.invoice
        (opened,) = ledger_rows(ledger, Case, inv)
        before = await asyncio.to_thread(_report, ledger, opened)
        assert before.in_progress == 1

        # Nothing to do while it runs.
        assert await reconcile(client, ledger, [inv]) == []
        await handle.terminate(reason="restarting the dev stack")

        (found,) = await reconcile(client, ledger, [inv])
        assert (found.invoice_id, found.outcome) == (inv, Outcome.TERMINATED)
        assert found.reason.endswith(": restarting the dev stack")
        assert await reconcile(client, ledger, [inv]) == []  # idempotent

        (outcome,) = ledger_rows(ledger, CaseOutcome, inv)
        assert (outcome.outcome, outcome.reason) == ("terminated", found.reason)
        assert ledger_rows(ledger, Case, inv)[0].closed_at == outcome.closed_at
        after = await asyncio.to_thread(_report, ledger, opened)
        assert (after.in_progress, after.closed, after.ended_outside) == (0, 1, 1)

        # Status (CLI, API and console share it) tells the real end, not the last state.
        state = await svc.case_status(client, inv)
        assert (state.status, state.outcome) == (CaseStatus.ENDED, Outcome.TERMINATED)
        assert state.next_action is None

        # Visibility: "active" means running; the ended filter finds it.
        query = svc.list_query(customer=case.customer)

        async def listed(status: str) -> list[svc.CaseSummary]:
            cases = await svc.list_cases(client, f"{query} AND {_status(status)}")
            return [c for c in cases if c.invoice_id == inv]

        await eventually(lambda: listed("ended"), lambda rows: len(rows) == 1, what="listed")
        assert await listed("active") == []
        (row,) = await listed("ended")
        assert (row.status, row.workflow_status) == ("ended", "terminated")

        # Support actions name the end instead of a Temporal mechanism.
        payload = svc.action_input("pause", reason="r", by="ann")
        refused = await _refusal(client, inv, payload)
        assert refused.startswith("the case is closed: terminated (terminated"), refused

        # The console shows it ended and offers no action form.
        app = create_app(
            settings.model_copy(update={"dunning_support_token": TOKEN}), client=client,
            ledger=ledger,
        )  # fmt: skip
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://c.test"
        ) as http:
            await http.post("/support/login", data={"token": TOKEN})
            page = (await http.get(f"/support/cases/{inv}")).text
        assert "terminated" in page
        assert 'id="form-pause"' not in page


def _status(status: str) -> str:
    # list_query builds the whole query; keep only the status clauses after the type.
    return svc.list_query(status=status).split(" AND ", 1)[1]


async def _refusal(client: Any, invoice: str, payload: Any) -> str:
    import pytest

    with pytest.raises(svc.ActionRejected) as refused:
        await svc.run_action(client, invoice, "pause", payload)
    return str(refused.value)


def _report(ledger: Ledger, opened: Case) -> Any:
    with ledger.sessions() as session:
        return compute_report(
            session, opened.opened_at, opened.opened_at + timedelta(microseconds=1)
        )
