"""Running cases through DunningWorkflow and the minimal baseline in turns, for
benchmarks/cases.py (one at a time, time-skipping server) and benchmarks/cases_load.py (many
at once, dev server)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.email import EmailActivities, make_sendgrid_client
from activities.stripe_billing import StripeActivities
from benchmarks.minimal_workflow import MinimalDunningWorkflow, NullLedger
from models.dunning import DunningInput
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from starter.cases import start_case
from worker import build_activities, build_worker

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


async def plain(side: str, drive: Awaitable[None]) -> None:
    await drive


async def take_turns(
    client: Client,
    deps: tuple[Settings, Ledger],
    sides: tuple[tuple[list[DunningInput], Run], tuple[list[DunningInput], Run]],
    shape: tuple[int, int, int],
    turn: Callable[[str, Awaitable[None]], Awaitable[None]] = plain,
) -> None:
    """DunningWorkflow and the baseline take turns, `rounds` each, every turn on a fresh worker
    led by `warmup` uncounted cases, so a slower or faster spell of the machine weighs on both.
    `turn(side, drive)` runs each turn ("full" or "min"): a benchmark may measure around it."""
    (settings, ledger), ((full_inputs, full), (min_inputs, minimal)) = deps, sides
    warmup, concurrency, rounds = shape
    assert settings.stripe_api_base, "the runs count requests on the Stripe stand-in"
    counts, stripe_url = (warmup, concurrency), settings.stripe_api_base
    null: Any = NullLedger()
    stripe_acts = StripeActivities(
        make_stripe_client(settings), null, settings.dunning_policy, preferences=null
    )
    email_acts = EmailActivities(make_sendgrid_client(settings), null, "billing@example.com")
    chunks = zip(
        rounds_of(full_inputs, rounds, warmup), rounds_of(min_inputs, rounds, warmup), strict=True
    )
    with ThreadPoolExecutor(max_workers=64) as pool:
        for full_chunk, min_chunk in chunks:
            activities = build_activities(settings, ledger)
            async with build_worker(client, "bench-full", activities, pool):
                path = ("bench-full", stripe_url, False)
                await turn("full", warm_then_drive(client, full, full_chunk, counts, path))
            async with Worker(
                client,
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
                path = ("bench-min", stripe_url, True)
                await turn("min", warm_then_drive(client, minimal, min_chunk, counts, path))
