"""Benchmark: Stripe webhook ingestion against starting workflows directly, in the same run.

    .venv/bin/python benchmarks/ingest.py [--events 1000] [--concurrency 20]

Posts N signed `invoice.payment_failed` events at concurrency C to the webhook API (real HTTP,
uvicorn, signature check, event claim in PostgreSQL, signal-with-start on a Temporal dev server),
and starts N workflows directly with the Temporal client at the same concurrency. Prints
accepted/s and p50/p99 latency for both and the ratios (API / direct), then checks that exactly
the expected workflows exist. No worker runs: this measures accepting work, not doing it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import stripe
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from benchmarks.cases import database
from models.codec import new_key, parse_keyring
from models.dunning import DunningInput
from models.settings import Settings
from models.store import Ledger, make_engine
from models.temporal import converter_for
from standins.server import BackgroundServer
from starter.app import create_app
from starter.cases import start_case
from workflows.search_attributes import ALL_KEYS

BIN = Path(sys.executable).parent
SECRET = "whsec_benchmark"

# Encrypted as in production (issue 12): a fresh key for this run, shared by every client and
# worker of the benchmark, so the measured cost includes the payload codec.
BENCH_CONVERTER = converter_for(parse_keyring(f"bench:{new_key()}"))


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


async def count_cases(client: Client, prefix: str, expected: int) -> int:
    query = f"WorkflowType = 'DunningWorkflow' AND WorkflowId STARTS_WITH 'dunning-{prefix}'"
    found = -1
    for _ in range(100):  # visibility is eventually consistent
        found = (await client.count_workflows(query)).count
        if found == expected:
            break
        await asyncio.sleep(0.2)
    return found


async def main(count: int, concurrency: int) -> None:
    run = uuid.uuid4().hex[:6]
    env = await WorkflowEnvironment.start_local(
        data_converter=BENCH_CONVERTER,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=ALL_KEYS,
    )
    client = env.client
    with database() as url:
        settings = Settings(
            database_url=url,
            stripe_webhook_secret=SECRET,
            dunning_support_token="bench",
            dunning_task_queue="bench-ingest",
            _env_file=None,  # type: ignore[call-arg]
        )
        ledger = Ledger(make_engine(url))
        with BackgroundServer(create_app(settings, client=client, ledger=ledger)) as api:
            http = httpx.AsyncClient(base_url=api.url, timeout=60)

            async def via_api(i: int) -> bool:
                body = failed_event(f"in_{run}api{i:07d}")
                header = stripe.WebhookSignature.generate_signature_header(  # type: ignore[attr-defined]
                    body.decode(), SECRET, timestamp=int(time.time())
                )
                response = await http.post(
                    "/webhooks/stripe",
                    content=body,
                    headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                )
                return response.status_code == 200

            async def direct(i: int) -> bool:
                input = DunningInput(
                    invoice_id=f"in_{run}dir{i:07d}",
                    customer_id=f"cus_{i}",
                    amount_due=1200,
                    currency="eur",
                    subscription_id=f"sub_{i}",
                )
                # The same start path as the webhook router, minus HTTP, signature and claim.
                await start_case(client, input, "bench-ingest")
                return True

            print(f"Posting {count} signed webhooks at concurrency {concurrency}…", flush=True)
            api_run = await timed(count, concurrency, via_api)
            print(f"Starting {count} workflows directly at concurrency {concurrency}…", flush=True)
            direct_run = await timed(count, concurrency, direct)
            await http.aclose()
        api_cases = await count_cases(client, f"in_{run}api", count)
        direct_cases = await count_cases(client, f"in_{run}dir", count)
        ledger.engine.dispose()
    await env.shutdown()
    report(api_run, direct_run, count)
    print(f"\nWorkflows found: via API {api_cases}/{count}, direct {direct_cases}/{count}")
    if (api_cases, direct_cases) != (count, count) or api_run[2] != count:
        raise SystemExit("mismatch: not every event became exactly one workflow")


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
    args = parser.parse_args()
    asyncio.run(main(args.events, args.concurrency))
