"""The app shell: probes, lazy Temporal connection, OpenAPI docs, state for other routers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger, make_engine
from models.stripe_events import StripeEvent
from standins.server import BackgroundServer, free_port
from starter.app import create_app
from starter.deps import get_ledger, get_settings_from, get_temporal_client
from tests.deadline import eventually
from tests.starter import payloads as pl


def http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


def down_settings(settings: Settings, **extra: Any) -> Settings:
    """Temporal at a port where nothing listens."""
    return settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{free_port()}",
            "stripe_webhook_secret": pl.SECRET,
            **extra,
        }
    )


async def test_healthz_needs_no_dependency(settings: Settings, ledger: Ledger) -> None:
    app = create_app(down_settings(settings), ledger=ledger)

    response = await http(app).get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_when_temporal_and_database_answer(
    time_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    app = create_app(settings, client=time_env.client, ledger=ledger)

    response = await http(app).get("/readyz")

    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "temporal": "ok", "database": "ok"},
    )


async def test_database_down_is_not_ready(
    time_env: WorkflowEnvironment, settings: Settings
) -> None:
    url = f"postgresql+psycopg2://dunning:hunter2@127.0.0.1:{free_port()}/dunning"
    unreachable = Ledger(make_engine(url))
    app = create_app(settings, client=time_env.client, ledger=unreachable)

    response = await http(app).get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["temporal"]) == ("unavailable", "ok")
    assert body["database"].startswith("unreachable")
    assert "hunter2" not in response.text and "dunning@" not in response.text
    unreachable.engine.dispose()


async def test_api_starts_with_temporal_down_and_recovers_when_it_is_back(
    dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    proxy = pl.TcpProxy(dev_env.client.service_client.config.target_host, free_port())
    app = create_app(
        down_settings(settings, temporal_address=proxy.address), ledger=ledger, temporal_timeout=2
    )
    evt = pl.event("invoice.paid", pl.invoice(status="paid"))
    body = pl.body_of(evt)
    # A real server with its lifespan: startup must not fail while Temporal is down.
    with BackgroundServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            live = await api.get("/healthz")
            not_ready = await api.get("/readyz")
            kept = await api.post(
                "/webhooks/stripe", content=body, headers={"Stripe-Signature": pl.sign(body)}
            )
            await proxy.start()
            try:
                # Readiness reconnects once the connector's fail-fast second has passed.
                ready = await eventually(
                    lambda: api.get("/readyz"),
                    lambda r: r.json()["status"] == "ready",
                    what="/readyz answering ready once Temporal is back",
                )
                # The event kept while Temporal was down is applied by the relay's sweep.
                row = await eventually(
                    lambda: asyncio.to_thread(_event, ledger, evt["id"]),
                    lambda r: r is not None and r.status == "done",
                    what="the kept event applied",
                )
            finally:
                await proxy.stop()

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    # Degraded, not unready: webhooks are still taken, durably.
    assert (not_ready.status_code, not_ready.json()["status"]) == (200, "degraded")
    assert not_ready.json()["temporal"].startswith("unreachable")
    assert not_ready.json()["database"] == "ok"
    assert (kept.status_code, kept.json()["status"]) == (200, "queued")
    assert (ready.status_code, ready.json()["temporal"]) == (200, "ok")
    assert row is not None and row.action is not None
    assert row.action.startswith("no running case")


async def test_other_routers_reach_settings_ledger_and_temporal(
    time_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    support = APIRouter()

    @support.get("/api/whoami")
    async def whoami(
        client: Client = Depends(get_temporal_client),
        app_settings: Settings = Depends(get_settings_from),
        app_ledger: Ledger = Depends(get_ledger),
    ) -> dict[str, Any]:
        return {
            "namespace": client.namespace,
            "queue": app_settings.dunning_task_queue,
            "same_ledger": app_ledger is ledger,
        }

    up = create_app(settings, client=time_env.client, ledger=ledger)
    up.include_router(support)
    down = create_app(down_settings(settings), ledger=ledger)
    down.include_router(support)

    ok = await http(up).get("/api/whoami")
    unavailable = await http(down).get("/api/whoami")

    assert up.state.settings is settings and up.state.ledger is ledger
    assert ok.json() == {
        "namespace": time_env.client.namespace,
        "queue": settings.dunning_task_queue,
        "same_ledger": True,
    }
    assert (unavailable.status_code, unavailable.json()) == (
        503,
        {"error": "temporal unavailable, retry"},
    )


async def test_openapi_documents_every_route(settings: Settings, ledger: Ledger) -> None:
    app = create_app(down_settings(settings), ledger=ledger)
    client = http(app)

    docs = await client.get("/docs")
    spec = (await client.get("/openapi.json")).json()

    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    webhook = spec["paths"]["/webhooks/stripe"]["post"]
    assert webhook["summary"] == "Receive a Stripe webhook event"
    for text in ("invoice.payment_failed", "customer.subscription.deleted", "queued", "503"):
        assert text in webhook["description"]
    assert {"400", "413", "503"} <= set(webhook["responses"])
    assert [p["name"] for p in webhook["parameters"]] == ["Stripe-Signature"]
    assert "application/json" in webhook["requestBody"]["content"]
    for path in ("/healthz", "/readyz"):
        assert spec["paths"][path]["get"]["description"]


def _event(ledger: Ledger, event_id: str) -> StripeEvent | None:
    with ledger.sessions() as session:
        return session.scalars(
            select(StripeEvent).where(StripeEvent.event_id == event_id)
        ).one_or_none()
