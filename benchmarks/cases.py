"""Benchmark: N dunning cases through the default schedule, against a minimal baseline.

    .venv/bin/python benchmarks/cases.py [--cases 1000] [--concurrency 1] [--warmup 3] [--rounds 5]
        [--activity-times]

Runs on the time-skipping test server with the Stripe and SendGrid stand-ins and PostgreSQL
(TEST_DATABASE_URL, else a throwaway database on 127.0.0.1:5432). The same card mix goes
through DunningWorkflow and through MinimalDunningWorkflow in the same run; the ratios
(full / minimal) are what to compare across machines.

Cases run one at a time by default: the time-skipping server jumps the clock whenever every
client waits, and with several cases in flight it jumps while other cases' workflow tasks are
running, which expires those tasks and distorts both the rate and the history sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.email import EmailActivities, make_sendgrid_client
from activities.stripe_billing import StripeActivities
from benchmarks import activity_times
from benchmarks.activity_times import ActivityTimes
from benchmarks.minimal_workflow import MinimalDunningWorkflow, NullLedger
from models.codec import new_key, parse_keyring
from models.dunning import DunningInput
from models.migrate import scratch_database, upgrade_to_head
from models.settings import Settings
from models.store import Ledger, make_engine
from models.stripe_reads import make_stripe_client
from models.temporal import converter_for, ensure_search_attributes
from standins.server import ProcessServer
from starter.cases import start_case
from worker import build_activities, build_worker
from workflows.search_attributes import ALL_KEYS

BIN = Path(sys.executable).parent
# A third recover at the first retry, a third run the whole schedule, a third need a new card.
CARDS = (
    "visa_after_failure",
    "pm_card_chargeDeclinedInsufficientFunds",
    "pm_card_chargeDeclinedExpiredCard",
)


# Which worker a run goes to: its task queue, the Stripe stand-in's URL, whether minimal.
Path_ = tuple[str, str, bool]


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    outcomes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    stripe_calls: int = 0
    cases: int = 0

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0


@contextmanager
def database() -> Iterator[str]:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        upgrade_to_head(explicit)
        yield explicit
        return
    with scratch_database(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", "dunning_bench"
    ) as url:
        upgrade_to_head(url)
        yield url


# Encrypted as in production (issue 12): a fresh key for this run, shared by every client and
# worker of the benchmark, so the measured cost includes the payload codec.
BENCH_CONVERTER = converter_for(parse_keyring(f"bench:{new_key()}"))


def make_cases(stripe_url: str, count: int) -> list[DunningInput]:
    http = httpx.Client(base_url=stripe_url, timeout=30)
    inputs = []
    for i in range(count):
        card = CARDS[i % len(CARDS)]
        pm = "pm_card_chargeDeclinedInsufficientFunds" if card == "visa_after_failure" else card
        body = http.post("/_standin/scenarios/failed_invoice", json={"payment_method": pm}).json()
        if card == "visa_after_failure":
            headers = {"Authorization": "Bearer sk_test_bench"}
            http.post(
                "/v1/payment_methods/pm_card_visa/attach",
                data={"customer": body["customer"]},
                headers=headers,
            )
            http.post(
                f"/v1/customers/{body['customer']}",
                data={"invoice_settings[default_payment_method]": "pm_card_visa"},
                headers=headers,
            )
        charges = http.get(f"/_standin/invoices/{body['invoice']}/charges").json()
        obj = body["event"]["data"]["object"]
        inputs.append(
            DunningInput(
                invoice_id=body["invoice"],
                customer_id=body["customer"],
                subscription_id=body["subscription"],
                amount_due=obj["amount_due"],
                currency=obj["currency"],
                decline_code=charges["attempts"][0]["decline_code"],
            )
        )
    return inputs


async def drive(
    client: Client,
    run: Run,
    inputs: list[DunningInput],
    task_queue: str,
    concurrency: int,
    stripe_url: str,
    minimal: bool,
) -> None:
    http = httpx.AsyncClient(base_url=stripe_url, timeout=30)
    calls_before = len((await http.get("/_standin/requests")).json()["requests"])
    gate = asyncio.Semaphore(concurrency)
    handles: list[Any] = []

    async def one(input: DunningInput) -> None:
        async with gate:
            handle: Any
            if minimal:
                handle = await client.start_workflow(
                    MinimalDunningWorkflow.run,
                    input,
                    id=f"min-{input.invoice_id}",
                    task_queue=task_queue,
                )
            else:
                handle = await start_case(client, input, task_queue)
            await handle.result()
            handles.append(handle)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in inputs))
    run.seconds += time.perf_counter() - started
    run.cases += len(inputs)
    run.stripe_calls += (
        len((await http.get("/_standin/requests")).json()["requests"]) - calls_before
    )
    for handle in handles:
        history = await handle.fetch_history()
        result = await handle.result()
        outcome = result if isinstance(result, str) else result.outcome.value
        run.outcomes[outcome].append(len(history.events))


async def warm_then_drive(
    client: Client, run: Run, inputs: list[DunningInput], counts: tuple[int, int], path: Path_
) -> None:
    """A few cases first, not counted: the worker is then measured warm (imports, template
    and catalog compiles, connection pools), as a long-running worker is."""
    (warmup, concurrency), (task_queue, stripe_url, minimal) = counts, path
    await drive(client, Run("warm-up"), inputs[:warmup], task_queue, 1, stripe_url, minimal)
    await drive(client, run, inputs[warmup:], task_queue, concurrency, stripe_url, minimal)


def rounds_of(inputs: list[DunningInput], rounds: int, warmup: int) -> list[list[DunningInput]]:
    """`rounds` slices of the cases, each led by its own warm-up cases."""
    per_round = [inputs[i::rounds] for i in range(rounds)]
    return [chunk for chunk in per_round if len(chunk) > warmup]


async def main(count: int, concurrency: int, warmup: int, rounds: int, times: bool) -> None:
    with (
        database() as url,
        ProcessServer("standins.stripe_api:create_app") as stripe_srv,
        ProcessServer("standins.sendgrid_api:create_app") as sendgrid_srv,
    ):
        settings = Settings(
            database_url=url,
            stripe_api_base=stripe_srv.url,
            sendgrid_api_host=sendgrid_srv.url,
            stripe_api_key="sk_test_bench",
            _env_file=None,  # type: ignore[call-arg]
        )
        total = count + warmup * rounds
        print(f"Creating {2 * total} failed invoices on the stand-in…", flush=True)
        # The card mix is dealt round-robin: each round gets its share of every kind.
        full_inputs, min_inputs = (
            make_cases(stripe_srv.url, total),
            make_cases(stripe_srv.url, total),
        )
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=BENCH_CONVERTER,
            # A client interceptor that is also a worker one applies to its workers.
            interceptors=[ActivityTimes()] if times else [],
            test_server_existing_path=str(BIN / "temporal-test-server"),
        )
        await ensure_search_attributes(env.client, env.client.namespace, ALL_KEYS)
        ledger = Ledger(make_engine(url))
        counts = (warmup, concurrency)
        full, minimal = Run("DunningWorkflow"), Run("minimal baseline")
        null: Any = NullLedger()
        stripe_acts = StripeActivities(make_stripe_client(settings), null, settings.dunning_policy)
        email_acts = EmailActivities(make_sendgrid_client(settings), null, "billing@example.com")
        chunks = zip(
            rounds_of(full_inputs, rounds, warmup),
            rounds_of(min_inputs, rounds, warmup),
            strict=True,
        )
        print(f"Running {count} cases through each, in {rounds} alternating rounds…", flush=True)
        with ThreadPoolExecutor(max_workers=64) as pool:
            # The two take turns, so a slower or faster spell of the machine weighs on both;
            # one worker at a time, as the time-skipping server needs.
            for full_chunk, min_chunk in chunks:
                activities = build_activities(settings, ledger)
                async with build_worker(env.client, "bench-full", activities, pool):
                    path = ("bench-full", stripe_srv.url, False)
                    await warm_then_drive(env.client, full, full_chunk, counts, path)
                async with Worker(
                    env.client,
                    task_queue="bench-min",
                    workflows=[MinimalDunningWorkflow],
                    activities=[
                        stripe_acts.get_invoice_context,
                        stripe_acts.retry_payment,
                        stripe_acts.apply_final_action,
                        email_acts.send_email,
                    ],
                    activity_executor=pool,
                    max_concurrent_activities=64,
                ):
                    path = ("bench-min", stripe_srv.url, True)
                    await warm_then_drive(env.client, minimal, min_chunk, counts, path)
        await env.shutdown()
        ledger.engine.dispose()
    report(full, minimal)
    if times:  # warm-up cases included, on both sides
        activity_times.report({"bench-full": total, "bench-min": total})


def report(full: Run, minimal: Run) -> None:
    def events(run: Run) -> float:
        return statistics.mean(n for lengths in run.outcomes.values() for n in lengths)

    print()
    print(f"{'':28}{'DunningWorkflow':>18}{'minimal':>12}{'ratio':>9}")
    rows = [
        ("cases/s", full.rate, minimal.rate),
        ("history events/case (all)", events(full), events(minimal)),
        ("Stripe calls/case", full.stripe_calls / full.cases, minimal.stripe_calls / minimal.cases),
    ]
    for label, a, b in rows:
        print(f"{label:28}{a:>18.2f}{b:>12.2f}{a / b if b else 0:>9.2f}")
    print("\nHistory events per case by outcome:")
    for run in (full, minimal):
        for outcome, lengths in sorted(run.outcomes.items()):
            mean = statistics.mean(lengths)
            print(f"  {run.name:18} {outcome:24} n={len(lengths):<5} mean={mean:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3, help="uncounted cases per round and path")
    parser.add_argument("--rounds", type=int, default=5, help="turns each workflow takes")
    parser.add_argument(
        "--activity-times", action="store_true", help="time each activity (worker side)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.concurrency, args.warmup, args.rounds, args.activity_times))
