"""Fixtures for the stand-in tests: one stand-in per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from standins.sendgrid_api import create_app
from standins.server import BackgroundServer
from standins.stripe_api import StripeStandinConfig
from standins.stripe_api import create_app as create_stripe_app
from tests.standins.stripe_helpers import Receiver, make_client


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    srv = BackgroundServer(create_app()).start()
    yield srv
    srv.stop()


@pytest.fixture
def url(server: BackgroundServer) -> Iterator[str]:
    httpx.post(f"{server.url}/_standin/reset").raise_for_status()
    yield server.url


# Twilio stand-in (tests/standins/test_twilio_*.py): one server per module, reset per test, and
# a receiver that records the signed webhooks it sends.


class HookReceiver:
    """An HTTP endpoint that records each POST: the full URL, headers and form parameters."""

    def __init__(self) -> None:
        import threading
        from urllib.parse import parse_qsl

        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self.server: BackgroundServer | None = None

        async def record(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            entry = {"url": str(request.url), "headers": dict(request.headers), "params": form}
            with self._lock:
                self._received.append(entry)
            return Response(status_code=200)

        # Plain Starlette: the handler's annotations are never resolved (they are strings here).
        self.app = Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"{self.server.url}/{path.lstrip('/')}"

    def received(self, path_contains: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._received if path_contains in str(r["url"])]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[BackgroundServer]:
    from standins.twilio_api import create_app as create_twilio_app

    srv = BackgroundServer(create_twilio_app()).start()
    yield srv
    srv.stop()


@pytest.fixture
def twilio_url(twilio_server: BackgroundServer) -> Iterator[str]:
    httpx.post(f"{twilio_server.url}/_standin/reset").raise_for_status()
    yield twilio_server.url
    httpx.delete(f"{twilio_server.url}/_standin/faults").raise_for_status()


@pytest.fixture(scope="module")
def hook_server() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    receiver.server = BackgroundServer(receiver.app).start()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def hooks(hook_server: HookReceiver) -> HookReceiver:
    hook_server.clear()
    return hook_server


# Stripe stand-in (tests/standins/test_stripe_standin_*.py): one server per module with fast
# webhook retries, reset per test, and a receiver that records the webhooks it sends.


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with BackgroundServer(rec.app) as srv:
        yield rec, f"{srv.url}/hook"


@pytest.fixture(scope="module")
def stripe_standin() -> Iterator[BackgroundServer]:
    # Not `stripe_server`: that is tests/conftest.py's session-wide stand-in (default config).
    config = StripeStandinConfig(webhook_backoff_seconds=0.01)
    with BackgroundServer(create_stripe_app(config)) as srv:
        yield srv


@pytest.fixture
def base(stripe_standin: BackgroundServer) -> str:
    httpx.post(f"{stripe_standin.url}/_standin/reset").raise_for_status()
    httpx.post(f"{stripe_standin.url}/_standin/webhooks", json={"url": None}).raise_for_status()
    return stripe_standin.url


@pytest.fixture
def client(base: str) -> stripe.StripeClient:
    return make_client(base)
