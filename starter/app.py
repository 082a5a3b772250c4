"""The HTTP API: Stripe webhooks, health probes, and (later) the support routers.

    uvicorn --factory starter.app:create_app

The API starts even when Temporal is down: the Temporal client is connected on first use and
again on each request until it succeeds; meanwhile routes that need it answer 503 and
`/readyz` says which dependency is missing. Other routers get their dependencies from
`app.state` through `get_settings_from`, `get_ledger` and `get_temporal_client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from models.settings import Settings, get_settings
from models.store import Ledger, make_engine

log = logging.getLogger("dunning.api")
T = TypeVar("T")

# Bound on each Temporal call made while answering a request (the SDK alone would retry an
# unreachable server for ~10 s) and on each readiness check.
TEMPORAL_TIMEOUT_SECONDS = 5.0
CHECK_TIMEOUT_SECONDS = 3.0
# gRPC codes after which the same call may succeed later (503: Stripe redelivers).
TRANSIENT = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
    }
)


class TemporalUnavailable(Exception):
    """Temporal did not accept the call in time: answered 503, nothing promised yet."""


async def bounded(call: Awaitable[T], seconds: float) -> T:
    """Await a Temporal call for at most `seconds`; transient failures raise
    TemporalUnavailable.

    The SDK retries an unreachable server internally for about 10 s, longer than a webhook
    sender should wait; cancelling the call stops those retries, so after a 503 nothing is
    delivered late.
    """
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError as err:
        raise TemporalUnavailable("timed out") from err
    except RPCError as err:
        if err.status in TRANSIENT:
            raise TemporalUnavailable(err.status.name) from err
        raise


class TemporalConnector:
    """The app's Temporal client, connected lazily and retried until it succeeds once."""

    def __init__(
        self, settings: Settings, client: Client | None = None, timeout: float = 5.0
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self._client = client
        self._lock = asyncio.Lock()
        self._failed_at = 0.0

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            # Requests queued behind a failed attempt fail at once instead of each waiting.
            if time.monotonic() - self._failed_at < 1.0:
                raise TemporalUnavailable("connect failed a moment ago")
            try:
                self._client = await asyncio.wait_for(
                    Client.connect(
                        self.settings.temporal_address,
                        namespace=self.settings.temporal_namespace,
                        data_converter=pydantic_data_converter,
                    ),
                    self.timeout,
                )
            except (RuntimeError, OSError, TimeoutError, RPCError) as err:
                self._failed_at = time.monotonic()
                log.warning(
                    "Temporal at %s unreachable (%s)",
                    self.settings.temporal_address,
                    err.__class__.__name__,
                )
                raise TemporalUnavailable("connect failed") from err
            log.info("Connected to Temporal at %s", self.settings.temporal_address)
            return self._client


def get_settings_from(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_temporal_client(request: Request) -> Client:
    """FastAPI dependency; raises TemporalUnavailable (answered 503) while Temporal is down."""
    connector: TemporalConnector = request.app.state.temporal
    return await connector.get()


async def _temporal_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "temporal unavailable, retry"}, status_code=503)


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
    # Imported here: these routers import helpers from this module.
    from starter.support.api import install_support_routes
    from starter.support.console import install_console
    from starter.webhooks.router import router as webhook_router

    settings = settings or get_settings()
    owns_ledger = ledger is None
    ledger = ledger or Ledger(make_engine(settings.database_url))
    connector = TemporalConnector(settings, client, timeout=temporal_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Warm up the connection; if Temporal is down the API still starts (503 until back).
        with contextlib.suppress(TemporalUnavailable):
            await connector.get()
        yield
        if owns_ledger:
            ledger.engine.dispose()

    app = FastAPI(
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
    app.add_exception_handler(TemporalUnavailable, _temporal_unavailable)
    app.include_router(webhook_router)
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
            "200 when Temporal (gRPC health check) and the database (`SELECT 1`) answer;"
            " otherwise 503 naming the one that failed. Use it to route traffic, not to"
            " restart the process."
        ),
        responses={503: {"description": "Temporal or the database is unreachable"}},
    )
    async def readyz() -> JSONResponse:
        temporal, database = await asyncio.gather(
            _check_temporal(connector), _check_database(ledger)
        )
        ready = temporal == "ok" and database == "ok"
        body: dict[str, Any] = {
            "status": "ready" if ready else "unavailable",
            "temporal": temporal,
            "database": database,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
