"""The faults, one scenario each, grouped into stacks that run side by side.

Provider faults are scoped to their own cases (Stripe faults by invoice path, SendGrid faults
by recipient), so the Stripe scenarios share one stack and the SendGrid ones another (one
worker for all five would be the bottleneck). Faults that hit a whole process (worker,
Temporal, PostgreSQL) each get a stack of their own; webhooks posted while Temporal is down
share the Temporal restart's stack because they are the same outage seen from the API.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from benchmarks.faults_cases import Case, SendgridStandin, StripeStandin, create_cases, play
from benchmarks.faults_relay import Relay
from benchmarks.faults_stack import Stack

STARTED = time.monotonic()
# Seconds after a stack's first case; the demo schedule's steps are at 10, 30, 60, 90, 120 s.
OUTAGE_AT = 35.0
KILLS_AT = (12.0, 33.0, 63.0)
PG_DOWN_SECONDS = 30.0
TEMPORAL_DOWN_SECONDS = 20.0


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Ctx:
    stack: Stack
    client: Client
    stripe: StripeStandin
    sendgrid: SendgridStandin
    relay: Relay
    count: int
    cases: dict[str, list[Case]] = field(default_factory=dict)
    players: list[asyncio.Task[None]] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    wanted: frozenset[str] = frozenset()

    async def open(self, scenario: str) -> list[Case]:
        if scenario not in self.wanted:
            return []
        cases = await create_cases(self.stripe, scenario, self.count)
        self.cases[scenario] = cases
        self.players += [asyncio.create_task(play(c, self.stripe, self.client)) for c in cases]
        log(f"{self.stack.name}: {len(cases)} {scenario} cases created")
        return cases

    def note(self, scenario: str, text: str) -> None:
        self.notes.setdefault(scenario, []).append(text)
        log(f"{self.stack.name}: {scenario}: {text}")


async def _sleep_until(t0: float, offset: float) -> None:
    await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))


async def sendgrid(ctx: Ctx) -> None:
    """SendGrid 5xx and timeouts, each scoped to its scenario's recipients."""
    sg = ctx.sendgrid
    # The worker's SendGrid timeout is 4 s here: an 8 s answer is a timeout.
    await sg.fault(500, ctx.count, "sendgrid_5xx-")
    await sg.fault(503, ctx.count // 2, "sendgrid_5xx-")
    await sg.fault(202, ctx.count // 2, "sendgrid_timeout-", delay=8)  # accepted, answer late
    await sg.fault(503, ctx.count // 2, "sendgrid_timeout-", delay=8)  # refused, answer late
    await asyncio.gather(ctx.open("sendgrid_5xx"), ctx.open("sendgrid_timeout"))


async def stripe(ctx: Ctx) -> None:
    """Stripe 500 (saved and replayed), 429 and hangs, each scoped to its scenario's invoices."""
    await asyncio.gather(*(ctx.open(s) for s in ("stripe_500", "stripe_429", "stripe_hang")))
    for i, case in enumerate(ctx.cases.get("stripe_500", [])):
        # Two 500s for every other invoice: a retry under a new key meets a second one.
        await ctx.stripe.fault("500", 1 + i % 2, f"{case.invoice}/pay")
    for case in ctx.cases.get("stripe_429", []):
        await ctx.stripe.fault("429", 2, f"{case.invoice}/pay")
        await ctx.stripe.fault("lock_timeout", 1, f"{case.invoice}/pay")
    for case in ctx.cases.get("stripe_hang", []):
        # Executes, then answers after 8 s; the worker's Stripe timeout is 4 s.
        await ctx.stripe.fault("hang", 1, f"{case.invoice}/pay", 8)


async def worker_kill(ctx: Ctx) -> None:
    """SIGKILL the worker three times while Stripe and SendGrid calls are in flight."""
    # Every Stripe call waits 2 s before executing and every email is accepted, then answered
    # 2 s late, so a kill lands inside calls rather than between them.
    await ctx.stripe.fault("delay", 100_000, None, 2.0)
    await ctx.sendgrid.fault(202, 100_000, None, delay=2.0)
    await ctx.open("worker_kill")
    t0 = time.monotonic()  # kills count from the last case created
    for offset in KILLS_AT:
        await _sleep_until(t0, offset)
        deadline = time.monotonic() + 10
        in_flight = await ctx.stripe.in_flight()
        while in_flight == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            in_flight = await ctx.stripe.in_flight()
        ctx.stack.procs["worker"].signal(signal.SIGKILL)
        ctx.note("worker_kill", f"SIGKILL to the worker, {in_flight} Stripe calls in flight")
        await asyncio.sleep(1)
        ctx.stack.start_worker()


async def temporal(ctx: Ctx) -> None:
    """Restart the Temporal server mid-schedule; post new cases' webhooks while it is down."""
    await ctx.open("temporal_restart")
    t0 = time.monotonic()
    await _sleep_until(t0, OUTAGE_AT)
    await asyncio.to_thread(ctx.stack.procs["temporal"].stop)
    ctx.note("temporal_restart", "Temporal server stopped")
    down = time.monotonic()
    cases = await ctx.open("webhooks_temporal_down")
    starts = {c.start_event for c in cases}
    # Down until every start event was answered at least once (and for the outage's length).
    while time.monotonic() - down < TEMPORAL_DOWN_SECONDS or any(
        not ctx.relay.deliveries.get(e) or not ctx.relay.deliveries[e].answers for e in starts
    ):
        await asyncio.sleep(0.5)
        if time.monotonic() - down > 60:
            break
    early = [e for e in starts if ctx.relay.deliveries.get(e) and ctx.relay.deliveries[e].accepted]
    ctx.note("webhooks_temporal_down", f"{len(starts) - len(early)} start events refused while"
             f" Temporal was down, {len(early)} accepted")  # fmt: skip
    ctx.stack.start_temporal()
    await ctx.stack.temporal_ready()
    ctx.note("temporal_restart", f"Temporal back after {time.monotonic() - down:.0f}s")


async def postgres(ctx: Ctx) -> None:
    """PostgreSQL down for 30 s mid-schedule (customers give new cards and pay meanwhile)."""
    await ctx.open("postgres_down")
    t0 = time.monotonic()
    pg = ctx.stack.pg
    if pg is None:
        ctx.note("postgres_down", "skipped the outage: the database is on a shared server")
        return
    await _sleep_until(t0, OUTAGE_AT)
    await asyncio.to_thread(pg.stop, "fast")
    ctx.note("postgres_down", "PostgreSQL stopped")
    await asyncio.sleep(PG_DOWN_SECONDS)
    await asyncio.to_thread(pg.start)
    ctx.note("postgres_down", f"PostgreSQL back after {PG_DOWN_SECONDS:.0f}s")


@dataclass(frozen=True)
class Plan:
    name: str
    scenarios: tuple[str, ...]
    drive: Callable[[Ctx], Awaitable[None]]
    stripe_timeout: float = 10.0
    sendgrid_timeout: float = 10.0


PLANS = (
    Plan("stripe", ("stripe_500", "stripe_429", "stripe_hang"), stripe, stripe_timeout=4.0),
    Plan("sendgrid", ("sendgrid_5xx", "sendgrid_timeout"), sendgrid, sendgrid_timeout=4.0),
    Plan("worker", ("worker_kill",), worker_kill),
    Plan("temporal", ("temporal_restart", "webhooks_temporal_down"), temporal),
    Plan("postgres", ("postgres_down",), postgres),
)
