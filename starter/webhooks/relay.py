"""The relay: applies accepted Stripe events to Temporal, after the delivery was answered.

`POST /webhooks/stripe` answers 2xx as soon as the verified event is committed to
`stripe_events` (Stripe asks for a quick answer and asynchronous processing:
https://docs.stripe.com/webhooks#acknowledge-events-immediately). The relay then starts or
signals the case. Each accepted event is handed to it at once (`submit`), and a sweep picks up
what is left: events accepted while Temporal was down, events whose process died mid-way, and
events another API process accepted. So a Temporal outage costs latency, never an event.

At most `DUNNING_RELAY_CONCURRENCY` events are applied at a time per process; the rest wait in
the table (back-pressure). Applying an event twice (a crash after Temporal accepted it, before
it was marked done) has no second effect: starts are signal-with-start on the invoice's
workflow id, and signals carry request ids that Temporal dedupes (see executor.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from models.stripe_events import StripeEventStore
from starter.deps import TemporalUnavailable
from starter.webhooks.executor import Executor
from starter.webhooks.payloads import PayloadError, parse_event
from starter.webhooks.routing import Ignore, Plan, plan

log = logging.getLogger("dunning.webhooks.relay")

# How often the sweep looks for events left over; a submit wakes it at once.
SWEEP_SECONDS = 1.0
# While deliveries arrive (one within BURST_QUIET_SECONDS), events are applied BURST_SLOTS at a
# time; once they stop, at DUNNING_RELAY_CONCURRENCY.
BURST_SLOTS = 1
BURST_QUIET_SECONDS = 0.2
# Events a process takes on per concurrent slot (applied as slots free up).
BACKLOG_PER_SLOT = 4
# Retry delays after a failure: 1 s doubling, capped at a minute; while Temporal is down the
# sweep also checks its health each round and retries at once when it is back.
TEMPORAL_DOWN = "temporal unavailable"
HEALTH_SECONDS = 2.0
MAX_BACKOFF = timedelta(minutes=1)


class Relay:
    def __init__(
        self,
        store: StripeEventStore,
        client: Callable[[], Awaitable[Client]],
        executor: Callable[[Client], Executor],
        concurrency: int,
    ) -> None:
        self.store = store
        self.client = client
        self.executor = executor
        self.slots = asyncio.Semaphore(concurrency)
        self.applying = 0
        self.last_accept = -1e9
        self.concurrency = concurrency
        self.running: set[asyncio.Task[None]] = set()
        self.sweeper: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self.backlog = False
        self.temporal_down = False

    def start(self) -> None:
        """Start sweeping (the app's lifespan does; a first submit does too)."""
        self._ensure_sweeper()

    def has_room(self) -> bool:
        """Whether this process should apply a new event itself (and claim it as it is kept).
        Past that, events wait in the table for the sweep: a burst costs latency, not memory
        or leases that would run out before their turn."""
        return len(self.running) < self.concurrency * BACKLOG_PER_SLOT

    def accepted(self) -> None:
        """The endpoint kept an event: while deliveries keep coming, answering them goes first."""
        self.last_accept = asyncio.get_running_loop().time()

    def submit(self, event_id: str, decided: Plan) -> None:
        """Apply an event kept as `processing` by this process, in the background."""
        self._track(asyncio.create_task(self._run_claimed(event_id, decided)))
        self._ensure_sweeper()

    async def close(self) -> None:
        """Stop sweeping and let running applications finish (they are short and bounded)."""
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
            self.sweeper = None
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)

    async def sweep_once(self) -> int:
        """Take on every event that is due, as far as this process has room."""
        free = self.concurrency * BACKLOG_PER_SLOT - len(self.running)
        if free <= 0:
            return 0
        due = await run_in_threadpool(self.store.due, free)
        for event_id in due:
            self._spawn(event_id)
        # A full batch means more may be waiting: look again as soon as a slot frees up.
        self.backlog = len(due) == free
        return len(due)

    def _ensure_sweeper(self) -> None:
        if self.sweeper is None or self.sweeper.done():
            self.sweeper = asyncio.create_task(self._sweep_forever(), name="webhook-relay-sweep")

    async def _sweep_forever(self) -> None:
        while True:
            try:
                if self.temporal_down and await self._temporal_back():
                    # Temporal is back: what waited out its backoff for it is due now.
                    self.temporal_down = False
                    await run_in_threadpool(self.store.due_now, TEMPORAL_DOWN)
                await self.sweep_once()
            except Exception:  # the database away for a moment: the next sweep retries
                log.warning("relay sweep failed", exc_info=True)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), SWEEP_SECONDS)

    def _spawn(self, event_id: str) -> None:
        self._track(asyncio.create_task(self._apply(event_id), name=f"relay-{event_id}"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self.running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        if self.backlog:
            self.wake.set()

    async def _apply(self, event_id: str) -> None:
        async with self._slot():
            try:
                payload = await run_in_threadpool(self.store.take, event_id)
            except Exception:
                log.warning("could not take Stripe event %s; the sweep retries", event_id)
                return
            if payload is None:  # done, or another relay has it
                return
            try:
                decided = plan(parse_event(payload.encode()))
            except PayloadError as err:  # validated at accept: only a code change gets here
                await run_in_threadpool(self.store.finish, event_id, "ignored", f"rejected: {err}")
                log.warning("Stripe event %s rejected: %s", event_id, err)
                return
            await self._run(event_id, decided)

    async def _run_claimed(self, event_id: str, decided: Plan) -> None:
        async with self._slot():
            await self._run(event_id, decided)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A slot to apply one event. During a burst of deliveries only BURST_SLOTS are used,
        so the CPU goes to answering Stripe (what is kept cannot be lost); the backlog is
        applied at full concurrency as soon as the burst ends, and never starves: BURST_SLOTS
        keep applying meanwhile."""
        loop = asyncio.get_running_loop()
        async with self.slots:
            while (  # noqa: ASYNC110  (a quiet period is a matter of time, not of an event)
                self.applying >= BURST_SLOTS
                and loop.time() - self.last_accept < BURST_QUIET_SECONDS
            ):
                await asyncio.sleep(BURST_QUIET_SECONDS / 2)
            self.applying += 1
            try:
                yield
            finally:
                self.applying -= 1

    async def _run(self, event_id: str, decided: Plan) -> None:
        try:
            if isinstance(decided, Ignore):
                status, action = "ignored", decided.reason
            else:
                done = await self.executor(await self.client()).run(decided)
                status, action = done.status, done.action
        except TemporalUnavailable as err:
            self.temporal_down = True
            await self._later(event_id, f"{TEMPORAL_DOWN}: {err}")
            return
        except Exception as err:
            log.exception("Stripe event %s failed; retrying later", event_id)
            await self._later(event_id, f"error: {err.__class__.__name__}")
            return
        await run_in_threadpool(self.store.finish, event_id, status, action)  # type: ignore[arg-type]
        # The echo of a case's own Stripe call is expected: debug, never read as a problem.
        own = isinstance(decided, Ignore) and decided.own_event
        log.log(logging.DEBUG if own else logging.INFO, "Stripe event %s: %s", event_id, action)

    async def _temporal_back(self) -> bool:
        try:
            client = await self.client()
            await asyncio.wait_for(client.service_client.check_health(), HEALTH_SECONDS)
        except Exception:
            return False
        return True

    async def _later(self, event_id: str, error: str) -> None:
        attempts = await run_in_threadpool(self.store.attempts, event_id)
        delay = min(timedelta(seconds=2 ** max(attempts - 1, 0)), MAX_BACKOFF)
        with contextlib.suppress(Exception):  # unrecorded: the lease makes it due again
            await run_in_threadpool(self.store.retry_later, event_id, error, delay)
