"""`/api/cases`: bearer token, the validator's answers, list filters, on a real dev server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.dunning import DunningState, GrantGraceResult, SupportActionResult
from models.ledger import SupportAction
from models.settings import Settings
from models.store import Ledger
from standins.server import free_port
from starter.app import create_app
from starter.cases import start_case
from starter.support.api import install_support_routes
from starter.support.service import CaseSummary
from tests.deadline import eventually, eventually_sync
from tests.standin_control import StripeControl
from tests.workflows.helpers import INSUFFICIENT, history_length, ledger_rows, open_case

TOKEN = "support-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STATE_KEYS = set(DunningState.model_fields)
ACTION_KEYS = set(SupportActionResult.model_fields)


def support_app(settings: Settings, client: Client | None, ledger: Ledger, **extra: Any) -> FastAPI:
    # create_app installs the support routes with the settings it is given.
    configured = settings.model_copy(update={"dunning_support_token": TOKEN, **extra})
    return create_app(configured, client=client, ledger=ledger, temporal_timeout=2)


def http(app: FastAPI, headers: dict[str, str] | None = AUTH) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test", headers=headers)


@pytest.fixture
def api(dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger) -> httpx.AsyncClient:
    return http(support_app(settings, dev_env.client, ledger))


async def test_token_is_required(settings: Settings, ledger: Ledger, dev_env) -> None:
    app = support_app(settings, dev_env.client, ledger)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        for method, path in (("GET", "/api/cases"), ("POST", "/api/cases/in_1/resume")):
            response = await http(app, headers).request(method, path, json={"by": "x"})
            assert response.status_code == 401, (headers, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"error": "missing or wrong support token"}


async def test_unknown_case_is_404_and_no_answer_is_503(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    missing = {"error": "no dunning case exists for invoice in_missing"}
    response = await api.get("/api/cases/in_missing")
    assert (response.status_code, response.json()) == (404, missing)
    response = await api.post("/api/cases/in_missing/pause", json={"reason": "r", "by": "b"})
    assert (response.status_code, response.json()) == (404, missing)

    # No worker polls this case's task queue: the Update is never answered (may run later).
    case = StripeControl(settings).failed_invoice(INSUFFICIENT)
    handle = await start_case(dev_env.client, case.dunning_input(), "no-worker-polls-this")
    response = await api.post(f"/api/cases/{case.invoice}/retry-now", json={"by": "ann"})
    assert response.status_code == 503
    assert "the action may still take effect" in response.json()["error"]
    await handle.terminate("test over")

    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    response = await http(support_app(down, None, ledger)).get("/api/cases/in_missing")
    assert response.status_code == 503


async def test_actions_answer_the_new_state_and_rejections_422(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, run_worker, settings, ledger
) -> None:
    async with run_worker(dev_env.client) as task_queue:
        case, handle = await open_case(dev_env.client, settings, task_queue)
        base = f"/api/cases/{case.invoice}"

        response = await api.get(base)
        assert response.status_code == 200 and set(response.json()) == STATE_KEYS
        before = DunningState.model_validate(response.json())
        assert before.final_deadline is not None

        events = await history_length(handle)
        for body, message in (
            ({"days": 0, "reason": "r", "by": "b"}, "grace must be at least 1 day"),
            ({"days": 15, "reason": "r", "by": "b"}, "grace is limited to 14 days per grant"),
            ({"days": 2, "reason": " ", "by": "b"}, "reason is required"),
            ({"days": "two", "reason": "r", "by": "b"}, "days: Input should be a valid integer"),
            ({"days": 2, "reason": "r"}, "by: Field required"),
        ):
            response = await api.post(f"{base}/grace", json=body)
            assert response.status_code == 422, body
            assert response.json()["error"].startswith(message), response.json()
        assert await history_length(handle) == events

        response = await api.post(f"{base}/grace", json={"days": 3, "reason": "asked", "by": "ann"})
        assert response.status_code == 200, response.text
        granted = GrantGraceResult.model_validate(response.json())
        assert set(response.json()) == set(GrantGraceResult.model_fields)
        assert granted.new_final_deadline == before.final_deadline + timedelta(days=3)

        steps: list[tuple[str, dict[str, str], str]] = [
            ("pause", {"reason": "disputed", "by": "bob"}, "paused"),
            ("resume", {"by": "bob"}, "active"),
            ("retry-now", {"by": "cy"}, "active"),
            ("stop", {"reason": "written off", "by": "dee"}, "stopped"),
        ]
        for action, body, status in steps:
            response = await api.post(f"{base}/{action}", json=body)
            assert response.status_code == 200, (action, response.text)
            assert set(response.json()) == ACTION_KEYS
            assert response.json()["state"]["status"] == status
        await handle.result()

        response = await api.post(f"{base}/pause", json={"reason": "r", "by": "b"})
        assert response.json() == {"error": "the case is closed: stopped (written off)"}
        assert response.status_code == 422

    rows = eventually_sync(  # the workflow writes the audit log through an activity
        lambda: ledger_rows(ledger, SupportAction, case.invoice),
        lambda found: len(found) == 5,
        what="five audit rows",
    )
    assert [(r.action, r.by, r.reason, r.days) for r in rows] == [
        ("grant_grace", "ann", "asked", 3),
        ("pause", "bob", "disputed", None),
        ("resume", "bob", None, None),
        ("retry_now", "cy", None, None),
        ("stop", "dee", "written off", None),
    ]


async def test_list_filters(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, run_worker, settings
) -> None:
    async def invoices(**params: str) -> list[str]:
        response = await api.get("/api/cases", params=params)
        assert response.status_code == 200, response.text
        assert all(set(row) == set(CaseSummary.model_fields) for row in response.json())
        return [row["invoice_id"] for row in response.json()]

    async with run_worker(dev_env.client) as task_queue:
        paused, _ = await open_case(dev_env.client, settings, task_queue)
        active, _ = await open_case(dev_env.client, settings, task_queue)
        body = {"reason": "r", "by": "ann"}
        assert (await api.post(f"/api/cases/{paused.invoice}/pause", json=body)).status_code == 200

        # Visibility follows the search attributes a moment later.
        await eventually(
            lambda: invoices(status="paused", customer=paused.customer), what="paused listed"
        )
        await eventually(
            lambda: invoices(customer=active.customer, due_within="2d"), what="active due"
        )
        assert await invoices(status="paused", customer=paused.customer) == [paused.invoice]
        assert await invoices(status="active", customer=paused.customer) == []
        assert await invoices(customer=active.customer, due_within="2d") == [active.invoice]
        assert await invoices(customer=active.customer, due_within="1h") == []
        assert await invoices(customer=paused.customer, due_within="30d") == []

    for params, message in (
        ({"status": "late"}, "status: Input should be"),
        ({"due_within": "soon"}, "invalid duration"),
        ({"customer": "x' OR 1=1"}, "customer contains a quote"),
    ):
        response = await api.get("/api/cases", params=params)
        assert response.status_code == 422
        assert message in response.json()["error"]


def test_install_refuses_without_a_token_outside_dev_mode(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    production = settings.model_copy(
        update={"dunning_env": "production", "dunning_support_token": ""}
    )
    with pytest.raises(RuntimeError, match="DUNNING_SUPPORT_TOKEN is not set"):
        install_support_routes(FastAPI(), production)
    with pytest.raises(RuntimeError, match="DUNNING_SUPPORT_TOKEN"):
        create_app(production)

    dev = settings.model_copy(update={"dunning_env": "dev", "dunning_support_token": ""})
    app = FastAPI()
    with caplog.at_level(logging.WARNING, logger="dunning.support"):
        install_support_routes(app, dev)
    assert "open to anyone" in caplog.text
    assert "/api/cases" in app.openapi()["paths"]


async def test_dev_mode_without_a_token_is_open(
    dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    app = support_app(settings, dev_env.client, ledger, dunning_support_token="", dunning_env="dev")
    response = await http(app, headers=None).get("/api/cases/in_missing")
    assert response.status_code == 404


def test_openapi_documents_bodies_answers_and_the_bearer_scheme(
    settings: Settings, ledger: Ledger
) -> None:
    spec = support_app(settings, None, ledger).openapi()
    grace = spec["paths"]["/api/cases/{invoice_id}/grace"]["post"]
    assert grace["tags"] == ["support"]
    assert grace["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/GraceRequest"
    )
    answers = {
        code: r["content"]["application/json"]["schema"] for code, r in grace["responses"].items()
    }
    assert answers["200"]["$ref"].endswith("/GrantGraceResult")
    assert all(
        answers[code]["$ref"].endswith("/ErrorBody") for code in ("401", "404", "422", "503")
    )
    listing = spec["paths"]["/api/cases"]["get"]["responses"]["200"]["content"]
    assert listing["application/json"]["schema"]["items"]["$ref"].endswith("/CaseSummary")
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_a_retry_with_the_same_idempotency_key_grants_grace_once(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, run_worker, settings, ledger
) -> None:
    body = {"days": 2, "reason": "asked twice", "by": "ann"}
    async with run_worker(dev_env.client) as task_queue:
        case, _ = await open_case(dev_env.client, settings, task_queue)
        url = f"/api/cases/{case.invoice}/grace"
        key = {"Idempotency-Key": "ticket-4711 try"}
        first = await api.post(url, json=body, headers=key)
        retry = await api.post(url, json=body, headers=key)  # e.g. after a 503
        bad = await api.post(url, json=body, headers={"Idempotency-Key": "x" * 201})
        status = (await api.get(f"/api/cases/{case.invoice}")).json()
        rows = await eventually(  # written by an activity: wait while the worker runs
            lambda: asyncio.to_thread(ledger_rows, ledger, SupportAction, case.invoice),
            what="the audit row",
        )

    assert first.status_code == retry.status_code == 200, first.text
    assert first.headers["Idempotency-Key"] == "ticket-4711 try"
    assert retry.json() == first.json()
    assert [g["days"] for g in status["grace"]] == [2] and status["grace_days_total"] == 2
    assert bad.status_code == 400
    assert bad.json() == {"error": "Idempotency-Key: the request id is longer than 200 characters"}
    assert [(r.action, r.days) for r in rows] == [("grant_grace", 2)]


async def test_without_a_key_each_request_is_new_and_gets_its_own_key(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, run_worker, settings
) -> None:
    async with run_worker(dev_env.client) as task_queue:
        case, _ = await open_case(dev_env.client, settings, task_queue)
        url = f"/api/cases/{case.invoice}/grace"
        body = {"days": 1, "reason": "r", "by": "ann"}
        one, two = [await api.post(url, json=body) for _ in range(2)]

    assert one.headers["Idempotency-Key"] != two.headers["Idempotency-Key"]
    assert two.json()["state"]["grace_days_total"] == 2
