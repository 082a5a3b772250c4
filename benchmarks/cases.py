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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from temporalio.testing import WorkflowEnvironment

from benchmarks import activity_times
from benchmarks.activity_times import ActivityTimes
from benchmarks.case_runs import Run, take_turns
from models.codec import new_key, parse_keyring
from models.dunning import DunningInput
from models.migrate import scratch_database, upgrade_to_head
from models.settings import Settings
from models.store import Ledger, make_engine
from models.temporal import converter_for, ensure_search_attributes
from standins.server import ProcessServer
from workflows.search_attributes import ALL_KEYS

BIN = Path(sys.executable).parent
# A third recover at the first retry, a third run the whole schedule, a third need a new card.
CARDS = (
    "visa_after_failure",
    "pm_card_chargeDeclinedInsufficientFunds",
    "pm_card_chargeDeclinedExpiredCard",
)


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


@contextmanager
def stack(**settings: Any) -> Iterator[Settings]:
    """PostgreSQL and the Stripe and SendGrid stand-ins (processes of their own, as the
    providers are never in the worker's process), and the worker's settings for them."""
    with (
        database() as url,
        ProcessServer("standins.stripe_api:create_app") as stripe_srv,
        ProcessServer("standins.sendgrid_api:create_app") as sendgrid_srv,
    ):
        yield Settings(
            database_url=url,
            stripe_api_base=stripe_srv.url,
            sendgrid_api_host=sendgrid_srv.url,
            stripe_api_key="sk_test_bench",
            _env_file=None,  # type: ignore[call-arg]
            **settings,
        )


def both_inputs(settings: Settings, total: int) -> tuple[list[DunningInput], list[DunningInput]]:
    """`total` failed invoices for each workflow; the card mix is dealt round-robin, so each
    round gets its share of every kind."""
    assert settings.stripe_api_base
    print(f"Creating {2 * total} failed invoices on the stand-in…", flush=True)
    return make_cases(settings.stripe_api_base, total), make_cases(settings.stripe_api_base, total)


async def main(count: int, concurrency: int, warmup: int, rounds: int, times: bool) -> None:
    if times:
        activity_times.time_ledger()
    with stack() as settings:
        total = count + warmup * rounds
        full_inputs, min_inputs = both_inputs(settings, total)
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=BENCH_CONVERTER,
            # A client interceptor that is also a worker one applies to its workers.
            interceptors=[ActivityTimes()] if times else [],
            test_server_existing_path=str(BIN / "temporal-test-server"),
        )
        await ensure_search_attributes(env.client, env.client.namespace, ALL_KEYS)
        ledger = Ledger(make_engine(settings.database_url))
        full, minimal = Run("DunningWorkflow"), Run("minimal baseline")
        print(f"Running {count} cases through each, in {rounds} alternating rounds…", flush=True)
        # One worker at a time, as the time-skipping server needs.
        await take_turns(
            env.client,
            (settings, ledger),
            ((full_inputs, full), (min_inputs, minimal)),
            (warmup, concurrency, rounds),
        )
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
