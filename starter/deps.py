"""What the HTTP layer's routers share: settings, the ledger, the Temporal client, `bounded`.

`starter.app.create_app` puts them on `app.state`; the routers (webhooks, support API,
console) read them through the dependencies below. Routers import this module, never
`starter.app`, so the app factory can import the routers at the top without a cycle.

The Temporal client is connected on first use and again on each request until it succeeds;
meanwhile routes that need it raise TemporalUnavailable, which the app answers with 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models.settings import Settings
from models.store import Ledger
from models.temporal import connect

__all__ = [
    "TEMPORAL_TIMEOUT_SECONDS",
    "TemporalConnector",
    "TemporalUnavailable",
    "bounded",
    "get_ledger",
    "get_settings_from",
    "get_temporal_client",
    "request_timeout",
    "temporal_unavailable_handler",
]

log = logging.getLogger("dunning.api")
T = TypeVar("T")

# Bound on each Temporal call made while answering a request (the SDK alone would retry an
# unreachable server for ~10 s).
TEMPORAL_TIMEOUT_SECONDS = 5.0
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
                self._client = await asyncio.wait_for(connect(self.settings), self.timeout)
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
    """FastAPI dependency: the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_ledger(request: Request) -> Ledger:
    """FastAPI dependency: the app's ledger (one engine per app)."""
    ledger: Ledger = request.app.state.ledger
    return ledger


def request_timeout(request: Request) -> float:
    """The bound on one Temporal call while answering `request` (set by create_app)."""
    return float(getattr(request.app.state, "temporal_timeout", TEMPORAL_TIMEOUT_SECONDS))


async def get_temporal_client(request: Request) -> Client:
    """FastAPI dependency; raises TemporalUnavailable (answered 503) while Temporal is down."""
    connector: TemporalConnector = request.app.state.temporal
    return await connector.get()


async def temporal_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """The app-wide answer to TemporalUnavailable: 503, Stripe and clients retry."""
    return JSONResponse({"error": "temporal unavailable, retry"}, status_code=503)
