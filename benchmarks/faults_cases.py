"""Cases for the fault benchmark: failed invoices on the Stripe stand-in, and the people in them.

Each case is a renewal invoice whose first automatic charge declined; the stand-in emits that
`invoice.payment_failed` and the relay delivers it to the API, which starts the case (the
production path). Then, by role, the customer gives a new card or pays the invoice, support
pauses and resumes or stops the case, or nobody acts and the policy's final action runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from benchmarks.faults_stack import STRIPE_KEY
from models.dunning import PauseInput, ResumeInput, StopInput
from starter.cases import case_handle
from workflows.dunning import DunningWorkflow

ROLES = ("final", "new_card", "paid", "support", "stop")
FIRST_CARD = {
    "final": "pm_card_chargeDeclinedInsufficientFunds",
    "new_card": "pm_card_chargeDeclinedExpiredCard",  # never retried until a new card comes
    "paid": "pm_card_chargeDeclined",
    "support": "pm_card_chargeDeclinedInsufficientFunds",
    "stop": "pm_card_chargeDeclinedInsufficientFunds",
}
# Outcomes that are right for each role (anything else is reported as a note).
EXPECTED = {
    "final": {"subscription_canceled"},
    "new_card": {"recovered"},
    "paid": {"recovered", "already_paid"},
    "support": {"subscription_canceled"},
    "stop": {"stopped"},
}
# Seconds after a case was created; chosen to fall in the middle of the injected outages.
PAUSE_AT, RESUME_AT, NEW_CARD_AT, STOP_AT, PAY_AT = 5.0, 15.0, 40.0, 45.0, 50.0
ACT_TIMEOUT = 180.0
# A new connection per request: a pooled one that uvicorn closes as idle at the moment it is
# reused fails with ReadError, which would be the harness's error, not the service's.
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


@dataclass
class Case:
    scenario: str
    role: str
    invoice: str
    customer: str
    subscription: str
    email: str
    start_event: str
    created: float
    notes: list[str] = field(default_factory=list)


class StripeStandin:
    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=url,
            timeout=30,
            headers={"Authorization": f"Bearer {STRIPE_KEY}"},
            limits=FRESH_CONNECTIONS,
        )

    async def fault(self, mode: str, count: int, path: str | None, seconds: float = 0) -> None:
        spec = {"mode": mode, "count": count, "path_contains": path, "hang_seconds": seconds}
        (await self.http.post("/_standin/faults", json=spec)).raise_for_status()

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.http.get(path)
        response.raise_for_status()
        return dict(response.json())

    async def in_flight(self) -> int:
        requests = (await self.get("/_standin/requests"))["requests"]
        return sum(1 for r in requests if r["status"] is None)


class SendgridStandin:
    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=30, limits=FRESH_CONNECTIONS)

    async def fault(self, status: int, count: int, to: str | None, delay: float = 0) -> None:
        spec = {"status": status, "count": count, "to_contains": to, "delay_seconds": delay}
        (await self.http.post("/_standin/faults", json=spec)).raise_for_status()

    async def messages(self) -> list[dict[str, Any]]:
        response = await self.http.get("/_standin/messages")
        response.raise_for_status()
        return list(response.json())


async def create_cases(stripe: StripeStandin, scenario: str, count: int) -> list[Case]:
    gate = asyncio.Semaphore(6)  # a few at a time: the stand-in serialises on one lock anyway

    async def one(i: int) -> Case:
        role = ROLES[i % len(ROLES)]
        email = f"{scenario}-{i}@faults.example.com"  # SendGrid faults match the scenario
        spec = {
            "payment_method": FIRST_CARD[role],
            "amount": 1000 + i,
            "currency": "eur",
            "name": f"{scenario} customer {i}",
            "email": email,
            "metadata": {"scenario": scenario, "role": role},
        }
        async with gate:
            response = await stripe.http.post("/_standin/scenarios/failed_invoice", json=spec)
        response.raise_for_status()
        body = response.json()
        return Case(
            scenario,
            role,
            body["invoice"],
            body["customer"],
            body["subscription"],
            email,
            body["event"]["id"],
            time.monotonic(),
        )

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _stripe_call(case: Case, stripe: StripeStandin, path: str, data: dict[str, str]) -> None:
    """A customer's own call: retried on 5xx/429/timeouts with a fresh key, like a browser."""
    deadline = time.monotonic() + ACT_TIMEOUT
    answers: list[str] = []
    while time.monotonic() < deadline:
        headers = {"Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
        try:
            response = await stripe.http.post(path, data=data, headers=headers)
        except httpx.HTTPError as err:
            answers.append(type(err).__name__)
        else:
            answers.append(str(response.status_code))
            if response.status_code < 500 and response.status_code != 429:
                if response.status_code >= 400:
                    case.notes.append(f"{path} answered {response.status_code}: {response.text}")
                return
        await asyncio.sleep(1)
    case.notes.append(f"{path} never answered: {answers}")


async def _update(
    case: Case, client: Client, name: str, call: Callable[[str], Awaitable[Any]]
) -> None:
    """Retry while the case is still opening or Temporal is unreachable. An unanswered call may
    have landed, so its retry keeps the update id (a no-op if it did); a refused one did not,
    so the next try gets a new id."""
    deadline = time.monotonic() + ACT_TIMEOUT
    last, tries = "", 0
    while time.monotonic() < deadline:
        try:
            await call(f"bench-{name}-{case.invoice}-{tries}")
            return
        except WorkflowUpdateFailedError as err:
            last = str(err.cause)
            if "still opening" not in last:
                case.notes.append(f"{name} refused: {last}")
                return
            tries += 1
        except (RPCError, RuntimeError) as err:
            last = f"{type(err).__name__}: {err}"
        await asyncio.sleep(1)
    case.notes.append(f"{name} never accepted in {ACT_TIMEOUT:.0f}s: {last}")


async def play(case: Case, stripe: StripeStandin, client: Client) -> None:
    """Act out the case's role on its own clock (seconds since it was created)."""

    async def at(offset: float) -> None:
        await asyncio.sleep(max(0.0, case.created + offset - time.monotonic()))

    handle = case_handle(client, case.invoice)
    by = "faults-benchmark"
    if case.role == "new_card":
        await at(NEW_CARD_AT)
        # Stripe emits customer.updated; the API turns it into payment_method_updated.
        data = {"invoice_settings[default_payment_method]": "pm_card_visa"}
        await _stripe_call(case, stripe, f"/v1/customers/{case.customer}", data)
    elif case.role == "paid":
        await at(PAY_AT)
        # The customer pays on the hosted invoice page: Stripe emits invoice.paid.
        data = {"payment_method": "pm_card_visa"}
        await _stripe_call(case, stripe, f"/v1/invoices/{case.invoice}/pay", data)
    elif case.role == "support":
        await at(PAUSE_AT)
        pause = PauseInput(reason="customer on the phone", by=by)
        await _update(case, client, "pause", lambda id: handle.execute_update(
            DunningWorkflow.pause, pause, id=id))  # fmt: skip
        await at(RESUME_AT)
        resume = ResumeInput(by=by)
        await _update(case, client, "resume", lambda id: handle.execute_update(
            DunningWorkflow.resume, resume, id=id))  # fmt: skip
    elif case.role == "stop":
        await at(STOP_AT)
        stop = StopInput(reason="settled by bank transfer", by=by)
        await _update(case, client, "stop", lambda id: handle.execute_update(
            DunningWorkflow.stop, stop, id=id))  # fmt: skip
