"""Group commit for Stripe deliveries: every delivery that arrives while a commit is in flight
is kept by the next one, in a single transaction.

Each answered delivery must be durable first (committed, so flushed to PostgreSQL's WAL). One
transaction per delivery makes a burst (a billing run failing thousands of invoices at once)
queue behind as many WAL flushes and thread-pool hops; a batch pays for one. Nobody waits for a
batch to fill: the first delivery after a quiet moment is committed at once, alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from models.stripe_events import Claim, StripeEventStore

log = logging.getLogger("dunning.webhooks.intake")

# Rows per transaction: bounds the statement's size and how long one commit holds the batch.
MAX_BATCH = 200

Waiting = tuple[dict[str, Any], "asyncio.Future[Claim | None]"]


class Intake:
    def __init__(self, store: StripeEventStore, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self.waiting: list[Waiting] = []
        self.committer: asyncio.Task[None] | None = None

    async def keep(self, **row: Any) -> Claim | None:
        """Commit one verified event (a row for `StripeEventStore.accept_many`): None when this
        delivery kept it, else the Claim of a redelivery. Raises SQLAlchemyError when it could
        not be committed (answer 503: Stripe delivers it again)."""
        future: asyncio.Future[Claim | None] = asyncio.get_running_loop().create_future()
        self.waiting.append((row, future))
        if self.committer is None or self.committer.done():
            self.committer = asyncio.create_task(self._commit_all(), name="webhook-intake")
        return await future

    async def _commit_all(self) -> None:
        while self.waiting:
            batch = self.waiting[: self.max_batch]
            del self.waiting[: self.max_batch]
            try:
                answers = await run_in_threadpool(self.store.accept_many, [r for r, _ in batch])
            except OperationalError as err:  # the database away: every delivery gets its 503
                for _, future in batch:
                    _settle(future, error=err)
                continue
            except SQLAlchemyError:
                # One bad row must not cost the others their answer: keep them one by one.
                log.warning("a batch of %d deliveries failed; keeping them one by one", len(batch))
                await self._one_by_one(batch)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                _settle(future, answer)

    async def _one_by_one(self, batch: list[Waiting]) -> None:
        for row, future in batch:
            try:
                (answer,) = await run_in_threadpool(self.store.accept_many, [row])
            except SQLAlchemyError as err:
                _settle(future, error=err)
            else:
                _settle(future, answer)


def _settle(
    future: asyncio.Future[Claim | None],
    answer: Claim | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the delivery's connection closed meanwhile: Stripe will redeliver
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)
