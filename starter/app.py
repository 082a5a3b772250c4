"""The HTTP API: Stripe webhooks, health probes, the support API and console.

    uvicorn --factory starter.app:create_app

The API starts even when Temporal is down: the Temporal client is connected on first use and
again on each request until it succeeds; meanwhile routes that need it answer 503 and
`/readyz` says which dependency is missing. The routers' shared dependencies (settings,
ledger, Temporal client, `bounded`) live in `starter.deps`; this module only assembles the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError

from models.settings import Settings, get_settings
from models.store import Ledger, make_engine
from models.stripe_events import StripeEventStore
from models.temporal import resolve_keyring
from starter.deps import (
    TEMPORAL_TIMEOUT_SECONDS,
    TemporalConnector,
    TemporalUnavailable,
    temporal_unavailable_handler,
)
from starter.pay import pay_router
from starter.support.api import install_support_routes
from starter.support.console import install_console
from starter.support.notifications_api import install_notifications_api
from starter.webhooks.executor import Executor
from starter.webhooks.intake import Intake
from starter.webhooks.relay import Relay
from starter.webhooks.router import router as webhook_router
from starter.webhooks.sendgrid import router as sendgrid_router
from starter.webhooks.twilio import router as twilio_router

# Bound on each readiness check.
CHECK_TIMEOUT_SECONDS = 3.0


async def _check_temporal(connector: TemporalConnector) -> str:
    try:
        client = await connector.get()
        await asyncio.wait_for(
            client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS)),
            CHECK_TIMEOUT_SECONDS,
        )
    except (TemporalUnavailable, RPCError, RuntimeError, TimeoutError) as err:
        return f"unreachable ({err.__class__.__name__})"
    return "ok"


async def _check_database(ledger: Ledger) -> str:
    def select_one() -> None:
        with ledger.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(run_in_threadpool(select_one), CHECK_TIMEOUT_SECONDS)
    except Exception as err:
        # The class name only: driver messages can carry host names and user names.
        return f"unreachable ({err.__class__.__name__})"
    return "ok"


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    ledger: Ledger | None = None,
    temporal_timeout: float = TEMPORAL_TIMEOUT_SECONDS,
) -> FastAPI:
    settings = settings or get_settings()
    # Refuse to start rather than 500 on the first event: the Temporal client connects lazily,
    # so missing or bad DUNNING_ENCRYPTION_KEYS would otherwise surface only then.
    if client is None:
        resolve_keyring(settings)
    owns_ledger = ledger is None
    ledger = ledger or Ledger(make_engine(settings.database_url))
    connector = TemporalConnector(settings, client, timeout=temporal_timeout)

    events = StripeEventStore(
        ledger.sessions, timedelta(seconds=settings.dunning_relay_lease_seconds)
    )
    relay = Relay(
        events,
        connector.get,
        lambda client: Executor(client, settings.dunning_task_queue, ledger, temporal_timeout),
        settings.dunning_relay_concurrency,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Warm up the connection; if Temporal is down the API still starts (503 until back).
        with contextlib.suppress(TemporalUnavailable):
            await connector.get()
        # Events accepted before a restart (or while Temporal was away) are applied now.
        relay.start()
        yield
        await relay.close()
        if owns_ledger:
            ledger.engine.dispose()

    # FastAPI's /docs and /redoc load their scripts from a CDN: a blank page offline.
    # fastapi-offline serves the same Swagger UI assets from the installed package. No /redoc:
    # ReDoc's bundle still fetches its "powered by" logo from a CDN.
    app = FastAPIOffline(
        redoc_url=None,
        title="Dunning service",
        description=(
            "Receives Stripe webhooks and turns them into durable dunning cases on Temporal"
            " (one workflow `dunning-{invoice id}` per failed invoice)."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    # State is set here, not in the lifespan, so an ASGI transport without lifespan works too.
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.temporal = connector
    app.state.temporal_timeout = temporal_timeout
    app.state.relay = relay
    app.state.intake = Intake(events)
    app.add_exception_handler(TemporalUnavailable, temporal_unavailable_handler)
    app.include_router(webhook_router)
    app.include_router(twilio_router)  # SMS delivery reports and STOP/START
    app.include_router(pay_router())  # the customer's payment page, /pay/{token}
    app.include_router(sendgrid_router)  # email delivery, engagement and unsubscribes
    install_notifications_api(app)  # the in-app feed: /api/customers/{id}/notifications
    # Both refuse to start without DUNNING_SUPPORT_TOKEN outside dev mode.
    install_support_routes(app, settings)
    install_console(app, settings)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Liveness",
        description="200 while the process serves requests; checks no dependency.",
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness",
        description=(
            "200 while the database (`SELECT 1`) answers: webhooks are then kept durably"
            " even if Temporal is away (the relay applies them when it is back), so the body"
            " says `degraded` and `temporal: unreachable` instead of failing readiness; 503"
            " when the database does not answer. Use it to route traffic, not to restart the"
            " process."
        ),
        responses={503: {"description": "The database is unreachable"}},
    )
    async def readyz() -> JSONResponse:
        temporal, database = await asyncio.gather(
            _check_temporal(connector), _check_database(ledger)
        )
        ready = database == "ok"
        status = "unavailable" if not ready else ("ready" if temporal == "ok" else "degraded")
        body: dict[str, Any] = {"status": status, "temporal": temporal, "database": database}
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
