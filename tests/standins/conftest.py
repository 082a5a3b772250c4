"""Fixtures for the stand-in tests: one SendGrid stand-in per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from standins.sendgrid_api import create_app
from standins.server import BackgroundServer


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    srv = BackgroundServer(create_app()).start()
    yield srv
    srv.stop()


@pytest.fixture
def url(server: BackgroundServer) -> Iterator[str]:
    httpx.post(f"{server.url}/_standin/reset").raise_for_status()
    yield server.url
