"""Benchmark: Stripe webhook ingestion against starting workflows directly, in the same run.

    .venv/bin/python benchmarks/ingest.py [--events 1000] [--concurrency 20] [--workers 1]

Runs the API as its own process (uvicorn, as `dunning api` does, with `--workers` processes)
against a Temporal dev server and PostgreSQL. Posts N signed `invoice.payment_failed` events
at concurrency C (signature check, the event kept in PostgreSQL, answered; the relay then
signal-with-starts the case), then every event a second time (each must be answered as a
duplicate with no second effect), and starts N other workflows directly with the Temporal
client at the same concurrency. Prints accepted/s and p50/p99 latency for both and the ratios
(API / direct), how long the relay took to apply the last event, and checks that exactly N
cases exist for each path. No worker runs: this measures accepting work, not doing it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import httpx
import sqlalchemy as sa
import stripe
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from benchmarks.cases import database
from models.codec import new_key, parse_keyring
from models.dunning import DunningInput
from models.temporal import converter_for
from standins.server import free_port
from starter.cases import start_case
from workflows.search_attributes import ALL_KEYS

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_benchmark"

# Encrypted as in production (issue 12): a fresh key for this run, shared by every client and
# worker of the benchmark, so the measured cost includes the payload codec.
BENCH_KEY = f"bench:{new_key()}"
BENCH_CONVERTER = converter_for(parse_keyring(BENCH_KEY))


def failed_event(invoice: str) -> bytes:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "invoice.payment_failed",
        "data": {
            "object": {
                "id": invoice,
                "object": "invoice",
                "customer": f"cus_{invoice[-10:]}",
                "currency": "eur",
                "amount_due": 1200,
                "amount_remaining": 1200,
                "attempt_count": 1,
                "status": "open",
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": f"sub_{invoice[-10:]}"},
                },
            }
        },
    }
    return json.dumps(event).encode()


async def timed(
    count: int, concurrency: int, call: Callable[[int], Awaitable[bool]]
) -> tuple[float, list[float], int]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    accepted = 0

    async def one(i: int) -> None:
        nonlocal accepted
        async with gate:
            started = time.perf_counter()
            ok = await call(i)
            latencies.append(time.perf_counter() - started)
            accepted += ok

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started, latencies, accepted


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return float(statistics.quantiles(values, n=100, method="inclusive")[q - 1])


async def count_cases(client: Client, prefix: str, expected: int, within: float = 60) -> int:
    query = f"WorkflowType = 'DunningWorkflow' AND WorkflowId STARTS_WITH 'dunning-{prefix}'"
    deadline = time.monotonic() + within
    while True:  # visibility is eventually consistent
        found = (await client.count_workflows(query)).count
        if found == expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def applied(url: str) -> int:
    with sa.create_engine(url).connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM stripe_events WHERE status = 'done'")
            ).scalar_one()
        )


async def drained(url: str, expected: int, within: float = 600) -> float:
    """Seconds until the relay has applied `expected` events."""
    started, deadline = time.monotonic(), time.monotonic() + within
    while await asyncio.to_thread(applied, url) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"the relay did not apply {expected} events within {within:g}s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


@contextlib.contextmanager
def api_process(url: str, temporal: str, key: str, workers: int) -> Iterator[str]:
    """`uvicorn --factory starter.app:create_app` as production runs it, in its own process."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TEMPORAL_ADDRESS": temporal,
        "TEMPORAL_NAMESPACE": "default",
        "DUNNING_ENCRYPTION_KEYS": key,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "DUNNING_SUPPORT_TOKEN": "bench",
        "DUNNING_TASK_QUEUE": "bench-ingest",
        "DUNNING_ENV": "production",
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "starter.app:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    # Keep-alive longer than the pauses between phases, so the warm-up's connections serve the
    # measured phase (uvicorn closes idle ones after 5 s by default).
    argv += ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60"]
    process = subprocess.Popen(argv, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).json().get("status") == "ready":
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the API process did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def main(count: int, concurrency: int, workers: int) -> None:
    run = uuid.uuid4().hex[:6]
    env = await WorkflowEnvironment.start_local(
        data_converter=BENCH_CONVERTER,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=ALL_KEYS,
    )
    client = env.client
    temporal = client.service_client.config.target_host
    with database() as url, api_process(url, temporal, BENCH_KEY, workers) as base:
        # aiohttp, not httpx: at concurrency 100 httpx's connection pool, not the API, was
        # where requests waited (the API's event loop sat idle meanwhile). Every connection the
        # warm-up opens stays open for the measured phase, as a sender's keep-alive pool would.
        http = aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        bodies = [failed_event(f"in_{run}api{i:07d}") for i in range(count)]
        # Both paths warm up first (connections, pools, lazy imports), measured neither.
        warm = 2 * concurrency
        warm_bodies = [failed_event(f"in_{run}wapi{i:07d}") for i in range(warm)]
        answers: list[dict[str, Any]] = []

        async def via_api(i: int, pool: list[bytes] = bodies) -> bool:
            body = pool[i]
            header = stripe.WebhookSignature.generate_signature_header(  # type: ignore[attr-defined]
                body.decode(), SECRET, timestamp=int(time.time())
            )
            async with http.post(
                "/webhooks/stripe",
                data=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            ) as response:
                answers.append(await response.json())
                return response.status == 200

        async def direct(i: int, prefix: str = "dir") -> bool:
            input = DunningInput(
                invoice_id=f"in_{run}{prefix}{i:07d}",
                customer_id=f"cus_{i}",
                amount_due=1200,
                currency="eur",
                subscription_id=f"sub_{i}",
            )
            # The same start the relay makes, minus HTTP, signature and the kept event.
            await start_case(client, input, "bench-ingest")
            return True

        await timed(warm, concurrency, lambda i: via_api(i, warm_bodies))
        await timed(warm, concurrency, lambda i: direct(i, "wdir"))
        await drained(url, warm)
        print(f"Posting {count} signed webhooks at concurrency {concurrency}…", flush=True)
        api_run = await timed(count, concurrency, via_api)
        drain = await drained(url, warm + count)
        print(f"Posting each of them again at concurrency {concurrency}…", flush=True)
        answers.clear()
        await timed(count, concurrency, via_api)
        duplicates = sum(1 for answer in answers if answer.get("duplicate") is True)
        print(f"Starting {count} workflows directly at concurrency {concurrency}…", flush=True)
        direct_run = await timed(count, concurrency, direct)
        await http.close()
        api_cases = await count_cases(client, f"in_{run}api", count)
        direct_cases = await count_cases(client, f"in_{run}dir", count)
        applied_events = await asyncio.to_thread(applied, url) - warm
    await env.shutdown()
    report(api_run, direct_run, count)
    print(f"\nRelay: the last event applied {drain:.1f}s after the last was accepted")
    print(f"Duplicates answered as such: {duplicates}/{count}; events applied: {applied_events}")
    print(f"Workflows found: via API {api_cases}/{count}, direct {direct_cases}/{count}")
    expected = (count, count, count, count, count)
    found = (api_cases, direct_cases, api_run[2], duplicates, applied_events)
    if found != expected:
        raise SystemExit(f"mismatch: expected {expected}, found {found}")


def report(api: Any, direct: Any, count: int) -> None:
    rows = []
    for label, (seconds, latencies, accepted) in (("webhook API", api), ("direct start", direct)):
        rows.append(
            (
                label,
                accepted / seconds,
                percentile(latencies, 50) * 1000,
                percentile(latencies, 99) * 1000,
            )
        )
    print(f"\n{'':14}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for label, rate, p50, p99 in rows:
        print(f"{label:14}{rate:>12.1f}{p50:>10.1f}{p99:>10.1f}")
    (_, a_rate, a50, a99), (_, d_rate, d50, d99) = rows
    print(f"{'API / direct':14}{a_rate / d_rate:>12.2f}{a50 / d50:>10.2f}{a99 / d99:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.concurrency, args.workers))
