"""Fast checks of the fault benchmark's own machinery (the benchmark itself takes minutes)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.faults_cases import Case
from benchmarks.faults_measure import Row, table
from benchmarks.faults_relay import Relay
from benchmarks.faults_stack import Proc, free_port
from standins.server import BackgroundServer
from starter.webhooks.signature import verify
from tests.deadline import eventually_sync

SECRET = "whsec_smoke"


async def test_relay_redelivers_signed_events_until_accepted() -> None:
    answers = [503, 503, 200]
    seen: list[str] = []

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        verify(body, request.headers.get("stripe-signature"), [SECRET])  # raises if unsigned
        seen.append(json.loads(body)["id"])
        return JSONResponse({}, status_code=answers[len(seen) - 1])

    app = Starlette(routes=[Route("/webhooks/stripe", webhook, methods=["POST"])])
    with BackgroundServer(app) as api:
        relay = Relay(free_port(), api.url, SECRET)
        await relay.start()
        try:
            event = {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}
            async with httpx.AsyncClient() as http:
                response = await http.post(f"http://127.0.0.1:{relay._server.port}/events",
                                           content=json.dumps(event))  # fmt: skip
            assert response.status_code == 200  # the stand-in's delivery never waits on the API
            await relay.drain(15)
        finally:
            await relay.close()
    delivery = relay.deliveries["evt_1"]
    assert delivery.accepted and seen == ["evt_1"] * 3
    assert delivery.history() == "503 x2, 200"


def test_table_lists_every_column_and_losses_count() -> None:
    case = Case("stripe_500", "paid", "in_1", "cus_1", "sub_1", "a@b.c", "evt_1", 0.0)
    clean, lossy = Row("worker_kill"), Row("stripe_500")
    clean.counts.update(cases=40, finished=40)
    lossy.counts.update(cases=40, finished=40)
    lossy.add("dup_email", case, "dunning-in_1:step:2 reached SendGrid 2 times")
    text = table([clean, lossy])
    assert "double charges" in text and "canceled though paid" in text
    assert clean.losses == 0 and lossy.losses == 1
    assert lossy.evidence == [
        "stripe_500 in_1 (paid): dunning-in_1:step:2 reached SendGrid 2 times"
    ]


def _living_members(group: int) -> list[int]:
    """Pids in the process group that are not zombies (a container's init may not reap)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_proc_stop_kills_the_whole_group(tmp_path: Path) -> None:
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    proc = Proc("sleeper", [sys.executable, "-c", script], dict(os.environ), tmp_path / "log")
    proc.start()
    assert proc.popen is not None
    group = proc.popen.pid
    # The child and its grandchild.
    eventually_sync(lambda: _living_members(group), lambda pids: len(pids) >= 2, what="spawned")
    proc.stop(grace=2)
    # The grandchild is not our child: after SIGKILL the kernel tears it down on its own time
    # (a moment longer on a loaded machine), so wait for it against a deadline.
    eventually_sync(lambda: _living_members(group), lambda pids: pids == [], what="group gone")
    proc.signal(signal.SIGKILL)  # after stop: a no-op, never a reused pid
