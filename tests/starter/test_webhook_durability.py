"""An event answered 2xx is never lost: the API process is killed (SIGKILL) at random moments
while deliveries arrive, restarted, and every event ends as exactly one case.

The API runs as production runs it (uvicorn, its own process). Deliveries that got no 2xx are
sent again, as Stripe does; the ones that did are never sent again, so only the kept row can
bring them to Temporal.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger
from models.stripe_events import StripeEvent
from standins.server import free_port
from starter.app import create_app
from tests.deadline import eventually
from tests.starter import payloads as pl
from tests.starter.webhook_client import Api

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 60
KILLS = 3


class ApiProcess:
    def __init__(self, database_url: str, temporal: str, queue: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal,
            "TEMPORAL_NAMESPACE": "default",
            "STRIPE_WEBHOOK_SECRET": pl.SECRET,
            "DUNNING_SUPPORT_TOKEN": "durability",
            "DUNNING_TASK_QUEUE": queue,
            "DUNNING_ENV": "production",
            # A killed process's claims are applied by the next one after the lease.
            "DUNNING_RELAY_LEASE_SECONDS": "3",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "uvicorn", "--factory", "starter.app:create_app"]
        argv += ["--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(argv, env=self.env, cwd=ROOT)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)  # no shutdown: in-flight work is lost
            self.process.wait()

    async def up(self) -> None:
        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{self.url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(ready, what="the API process answering")


@pytest.fixture
def api_process(database_url: str, dev_env: WorkflowEnvironment) -> Iterator[ApiProcess]:
    queue = f"durability-{random.randrange(10**9)}"
    api = ApiProcess(database_url, dev_env.client.service_client.config.target_host, queue)
    yield api
    api.kill()


@pytest.fixture
async def cleanup(dev_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    ids: list[str] = []
    yield ids
    for wid in ids:
        try:
            await dev_env.client.get_workflow_handle(wid).terminate("test over")
        except RPCError:
            pass


async def test_killed_mid_burst_every_acknowledged_event_becomes_one_case(
    api_process: ApiProcess, dev_env: WorkflowEnvironment, ledger: Ledger, cleanup: list[str]
) -> None:
    seeded = random.Random(7)
    events = [pl.event("invoice.payment_failed", pl.invoice(pl.API_ENDIVE)) for _ in range(EVENTS)]
    cleanup.extend(f"dunning-{e['data']['object']['id']}" for e in events)
    acknowledged: set[str] = set()

    async def deliver_until_2xx(http: httpx.AsyncClient, evt: dict[str, object]) -> None:
        body = pl.body_of(evt)
        while str(evt["id"]) not in acknowledged:  # Stripe retries whatever got no 2xx
            try:
                response = await http.post(
                    f"{api_process.url}/webhooks/stripe",
                    content=body,
                    headers={"Stripe-Signature": pl.sign(body)},
                )
                if response.status_code == 200:
                    acknowledged.add(str(evt["id"]))
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)

    async def killer() -> None:
        for _ in range(KILLS):
            await asyncio.sleep(seeded.uniform(0.05, 0.6))
            api_process.kill()
            await asyncio.sleep(0.1)
            api_process.start()
            await api_process.up()

    api_process.start()
    await api_process.up()
    async with httpx.AsyncClient(timeout=10) as http:
        await asyncio.gather(killer(), *(deliver_until_2xx(http, evt) for evt in events))
    assert acknowledged == {str(e["id"]) for e in events}

    # The last process (or its sweep, for what a killed one had claimed: after the lease)
    # applies everything that was kept.
    await eventually(
        lambda: asyncio.to_thread(_applied, ledger, acknowledged),
        lambda done: done == EVENTS,
        within=60,
        what="every kept event applied",
    )
    assert await _cases(dev_env.client, cleanup) == EVENTS
    # The kills did land mid-way: some deliveries were cut off and sent again, or some kept
    # events were taken over from a killed process by the next one's sweep.
    deliveries, attempts = await asyncio.to_thread(_effort, ledger, acknowledged)
    print(f"deliveries {deliveries}, applications {attempts} for {EVENTS} events")
    assert deliveries + attempts > 2 * EVENTS


def _applied(ledger: Ledger, ids: set[str]) -> int:
    with ledger.sessions() as session:
        query = select(func.count()).where(
            StripeEvent.event_id.in_(ids), StripeEvent.status == "done"
        )
        return int(session.scalar(query) or 0)


def _effort(ledger: Ledger, ids: set[str]) -> tuple[int, int]:
    with ledger.sessions() as session:
        query = select(func.sum(StripeEvent.deliveries), func.sum(StripeEvent.attempts)).where(
            StripeEvent.event_id.in_(ids)
        )
        deliveries, attempts = session.execute(query).one()
        return int(deliveries or 0), int(attempts or 0)


async def _cases(client: Client, workflow_ids: list[str]) -> int:
    found = 0
    for wid in workflow_ids:
        await client.get_workflow_handle(wid).describe()  # raises if the case does not exist
        found += 1
    return found


async def test_a_burst_beyond_the_relays_room_waits_in_the_table_and_drains(
    dev_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger, cleanup: list[str]
) -> None:
    # One slot, so room for four: the rest of the burst is kept `queued`, and only the sweep
    # can apply those.
    settings = api_settings.model_copy(update={"dunning_relay_concurrency": 1})
    api = Api(create_app(settings, client=dev_env.client, ledger=ledger), ledger)
    events = [pl.event("invoice.payment_failed", pl.invoice(pl.API_ENDIVE)) for _ in range(12)]
    cleanup.extend(f"dunning-{e['data']['object']['id']}" for e in events)
    try:
        answers = await asyncio.gather(*(api.deliver(e, settle=False) for e in events))
        await eventually(
            lambda: asyncio.to_thread(_applied, ledger, {str(e["id"]) for e in events}),
            lambda done: done == len(events),
            what="the burst applied",
        )
    finally:
        await api.app.state.relay.close()
    assert [a.json()["status"] for a in answers] == ["queued"] * len(events)
    assert await _cases(dev_env.client, cleanup) == len(events)
