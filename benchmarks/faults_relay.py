"""Webhook delivery the way Stripe does it: every event, re-signed, redelivered until a 2xx.

The Stripe stand-in posts each event to this relay (which always answers 200 at once); the
relay then delivers it to the dunning API and keeps retrying any non-2xx or network error with
backoff until the benchmark ends, as Stripe retries for days. Every answer is recorded, so a
lost webhook is a measured fact: an event never accepted, or accepted without its effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from standins.server import BackgroundServer
from standins.stripe_api.webhooks import sign

MAX_BACKOFF = 4.0
CONCURRENCY = 8
# The endpoint's subscription (README, "Settings to change in Stripe"): Stripe sends only these.
SUBSCRIBED = frozenset({
    "invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded",
    "invoice.payment_action_required", "invoice.voided", "invoice.marked_uncollectible",
    "customer.subscription.deleted", "customer.updated", "payment_method.attached",
    "setup_intent.succeeded",
})  # fmt: skip


@dataclass
class Delivery:
    event: dict[str, Any]
    payload: str
    answers: list[str] = field(default_factory=list)
    accepted: bool = False

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def type(self) -> str:
        return str(self.event["type"])

    @property
    def obj(self) -> dict[str, Any]:
        return dict(self.event["data"]["object"])

    def history(self) -> str:
        """`503 x3, 200`: what the API answered to each delivery, compressed."""
        runs: list[list[Any]] = []
        for answer in self.answers:
            if runs and runs[-1][0] == answer:
                runs[-1][1] += 1
            else:
                runs.append([answer, 1])
        return ", ".join(a if n == 1 else f"{a} x{n}" for a, n in runs)


class Relay:
    def __init__(self, port: int, api_url: str, secret: str) -> None:
        self.api_url = api_url
        self.secret = secret
        self.deliveries: dict[str, Delivery] = {}
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        app = Starlette(routes=[Route("/events", self._receive, methods=["POST"])])
        self._server = BackgroundServer(app, port=port)

    async def _receive(self, request: Request) -> JSONResponse:
        # Runs on the server thread: hand the event over to the benchmark's loop.
        payload = (await request.body()).decode()
        delivery = Delivery(json.loads(payload), payload)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._accept, delivery)
        return JSONResponse({"received": True})

    def _accept(self, delivery: Delivery) -> None:
        if delivery.type not in SUBSCRIBED:
            return
        if delivery.id not in self.deliveries:  # the stand-in may itself resend
            self.deliveries[delivery.id] = delivery
            self._queue.put_nowait(delivery)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._server.start)
        # Idle connections are dropped before uvicorn's 5 s keep-alive can close one under us.
        self._http = httpx.AsyncClient(timeout=15, limits=httpx.Limits(keepalive_expiry=2.0))
        self._tasks = [asyncio.create_task(self._work()) for _ in range(CONCURRENCY)]

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            if not await self._deliver_once(delivery):
                # Redeliver later without holding a worker slot meanwhile.
                backoff = min(MAX_BACKOFF, 0.5 * 2 ** (len(delivery.answers) - 1))
                asyncio.get_running_loop().call_later(backoff, self._queue.put_nowait, delivery)

    async def _deliver_once(self, delivery: Delivery) -> bool:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(delivery.payload, self.secret, int(time.time())),
        }
        try:
            response = await self._http.post(
                f"{self.api_url}/webhooks/stripe", content=delivery.payload, headers=headers
            )
            answer = str(response.status_code)
            delivery.accepted = response.is_success
        except httpx.HTTPError as err:
            answer = type(err).__name__
        delivery.answers.append(answer)
        return delivery.accepted

    def pending(self) -> int:
        return sum(1 for d in self.deliveries.values() if not d.accepted)

    async def drain(self, seconds: float) -> None:
        """Wait (bounded) until every event the stand-in sent has been accepted."""
        deadline = time.monotonic() + seconds
        while self.pending() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls state
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(AttributeError):
            await self._http.aclose()
        await asyncio.to_thread(self._server.stop)
