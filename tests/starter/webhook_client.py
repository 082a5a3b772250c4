"""A signing client of the webhook endpoint, and how to read what became of an event."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from models.store import Ledger
from models.stripe_events import StripeEvent
from tests.deadline import eventually
from tests.starter import payloads as pl
from tests.starter.payloads import SECRET


class Api:
    """An in-process client of the app that signs what it sends, as Stripe does.

    The endpoint answers once the event is kept (`"status": "queued"`) and the relay applies
    it a moment later. `deliver` waits for that by default and reports the applied result in
    the answer's place (`status`, `action`), so tests read what happened to the event;
    `settle=False` returns the endpoint's own answer.
    """

    def __init__(self, app: FastAPI, ledger: Ledger | None = None) -> None:
        self.app = app
        self.ledger = ledger
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dunning.test", timeout=30
        )

    async def deliver(
        self,
        evt: dict[str, Any] | None = None,
        *,
        body: bytes | None = None,
        secret: str = SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        settle: bool = True,
    ) -> httpx.Response:
        raw = body if body is not None else pl.body_of(evt or {})
        sent = {"Content-Type": "application/json; charset=utf-8"}
        sent["Stripe-Signature"] = signature or pl.sign(raw, secret, timestamp)
        sent.update(headers or {})
        response = await self.http.post("/webhooks/stripe", content=raw, headers=sent)
        if not settle or response.status_code != 200 or self.ledger is None:
            return response
        answer = response.json()
        if answer.get("status") not in ("queued", "processing"):
            return response
        row = await applied(self.ledger, answer["event"])
        return httpx.Response(
            200,
            json={**answer, "status": row.status, "action": row.action},
            request=response.request,
        )


async def applied(
    ledger: Ledger, event_id: str, until: tuple[str, ...] = ("done", "ignored", "failed")
) -> StripeEvent:
    """The event's row once the relay is done with it (by default: applied, ignored, or
    failed for now)."""

    async def row() -> StripeEvent | None:
        return await asyncio.to_thread(event_row, ledger, event_id)

    found = await eventually(row, lambda r: r is not None and r.status in until, what=str(until))
    assert found is not None
    return found


def event_row(ledger: Ledger, event_id: str) -> StripeEvent | None:
    with ledger.sessions() as session:
        return session.scalars(
            select(StripeEvent).where(StripeEvent.event_id == event_id)
        ).one_or_none()
