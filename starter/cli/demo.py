"""Demo cases for `dunning demo` / `dunning dev`: failed invoices on the Stripe stand-in.

Every case enters the way production cases do: the stand-in signs an `invoice.payment_failed`
webhook, the API verifies it and starts the workflow. The demo then plays the customer
(switching to a working card, which Stripe reports as `customer.updated`) and support (a
`grant_grace` Update through the Temporal client), so the Temporal UI shows cases recovering,
pushed out by grace, and heading for cancellation side by side.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx
import stripe
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from models.dunning import GrantGraceInput
from models.settings import Settings
from starter.cases import case_handle
from starter.cli import UserError, demo_arms
from workflows.dunning import DunningWorkflow

GOOD_CARD = "pm_card_visa"
# (test payment method, what a person reads) — Stripe's documented declining test cards.
CARDS = (
    ("pm_card_chargeDeclinedInsufficientFunds", "Visa ••9995 insufficient funds"),
    ("pm_card_chargeDeclinedExpiredCard", "Visa ••0069 expired card"),
    ("pm_card_authenticationRequired", "Visa ••3184 authentication required"),
    ("pm_card_chargeDeclined", "Visa ••0002 generic decline"),
)
PEOPLE = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra")
AMOUNTS = (1200, 4900, 990, 2500, 19900, 7500)
OPEN_TIMEOUT = 30.0
RECOVERY_TIMEOUT = 60.0


class Role(StrEnum):
    RECOVER = "recover"
    GRACE = "grace"
    CANCEL = "cancel"


@dataclass
class DemoCase:
    invoice: str
    customer: str
    card: str
    amount: int
    currency: str
    role: Role
    event_id: str
    plan: str = ""
    arm: str = ""  # the customer's experiment arm under DUNNING_RULES; "" without one


def roles(count: int) -> list[Role]:
    """One case alone is left to run its course; from three on, every story is shown."""
    if count <= 0:
        return []
    if count <= 2:
        return [Role.RECOVER, Role.CANCEL][-count:]
    extra = [Role.CANCEL if i % 2 else Role.RECOVER for i in range(count - 3)]
    return [Role.RECOVER, Role.GRACE, Role.CANCEL, *extra]


async def preflight(stripe_url: str, api_url: str) -> None:
    """Check both HTTP ends before touching anything, so a wrong URL is one clear line."""
    async with httpx.AsyncClient(base_url=stripe_url, timeout=5) as http:
        await _check_standin(http, stripe_url)
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            ready = await http.get(f"{api_url.rstrip('/')}/readyz")
    except httpx.HTTPError as err:
        raise UserError(
            f"the dunning API is not reachable at {api_url} ({type(err).__name__}); start it"
            " with `dunning api` or `dunning dev`, or pass --api"
        ) from None
    if ready.status_code != 200:
        raise UserError(
            f"the dunning API at {api_url} is not ready: /readyz answered {ready.status_code}"
            f" {ready.text[:120]!r}"
        )


async def _check_standin(http: httpx.AsyncClient, url: str) -> None:
    try:
        response = await http.get("/_standin/faults")
    except httpx.HTTPError as err:
        raise UserError(
            f"the Stripe stand-in is not reachable at {url} ({type(err).__name__}); start it"
            " with `dunning dev` or pass --stripe"
        ) from None
    if response.status_code != 200:
        raise UserError(
            f"{url} is not the Stripe stand-in (no /_standin/ controls); the demo cannot create"
            " failing invoices on real Stripe"
        )


async def _opened(client: Client, case: DemoCase, http: httpx.AsyncClient) -> None:
    handle = case_handle(client, case.invoice)
    deadline = time.monotonic() + OPEN_TIMEOUT
    while time.monotonic() < deadline:
        try:
            await handle.describe()
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.25)
    # Say why: the stand-in records every delivery attempt of the event.
    body = (await http.get("/_standin/events")).json()
    tries = [d for d in body.get("deliveries", []) if d.get("event") == case.event_id]
    if not tries:
        why = (
            "the stand-in has no webhook endpoint (set STRIPE_WEBHOOK_SECRET or use `dunning dev`)"
        )
    else:
        last = tries[-1]
        why = f"delivery to {last['url']} answered {last['status_code'] or last['error']}"
    raise UserError(f"no case opened for {case.invoice} within {OPEN_TIMEOUT:.0f}s: {why}")


def _at(moment: datetime | None, fmt: str = "%H:%M:%S") -> str:
    # The reader's clock: these are minutes (or, after grace, days) from now.
    return moment.astimezone().strftime(fmt) if moment else "?"


async def _grant_grace(client: Client, case: DemoCase) -> str:
    handle = case_handle(client, case.invoice)
    deadline = time.monotonic() + OPEN_TIMEOUT
    while True:
        try:
            result = await handle.execute_update(
                DunningWorkflow.grant_grace,
                GrantGraceInput(days=3, reason="demo: customer asked for time", by="demo"),
            )
            final = _at(result.new_final_deadline, "%a %d %b %H:%M")
            action = result.state.final_action.replace("_", " ")
            return f"support grants 3 days of grace: {action} moves to {final}"
        except WorkflowUpdateFailedError as err:
            # The validator refuses until the case has read its invoice and policy.
            if "still opening" not in str(err.cause) or time.monotonic() > deadline:
                return f"grace refused: {err.cause}"
        await asyncio.sleep(0.5)


async def _left_alone(client: Client, case: DemoCase) -> str:
    """The case's own schedule, from its status query once its policy is loaded."""
    handle = case_handle(client, case.invoice)
    deadline = time.monotonic() + OPEN_TIMEOUT
    while time.monotonic() < deadline:
        state = await handle.query(DunningWorkflow.status)
        if state.total_steps:
            action = state.final_action.replace("_", " ")
            return f"left alone: emails, then {action} at {_at(state.final_deadline)}"
        await asyncio.sleep(0.5)
    return "left alone: emails, then the policy's final action"


async def _failed_invoice(http: httpx.AsyncClient, i: int, role: Role) -> DemoCase:
    """One failed invoice on the stand-in (its webhook opens the case)."""
    (method, card), name = CARDS[i % len(CARDS)], PEOPLE[i % len(PEOPLE)]
    spec: dict[str, Any] = {
        "payment_method": method,
        "amount": AMOUNTS[i % len(AMOUNTS)],
        "currency": "eur",
        "name": name,
        "email": f"{name.split()[0].lower()}@example.com",
        # Every other customer has a phone: their urgent and final notices are
        # texted too (see the Twilio stand-in's messages).
        "phone": f"+1415555{i:04d}" if i % 2 == 0 else None,
        "metadata": {"demo": role.value},
    }
    response = await http.post("/_standin/scenarios/failed_invoice", json=spec)
    body = response.raise_for_status().json()
    return DemoCase(
        body["invoice"], body["customer"], card, spec["amount"], "eur", role, body["event"]["id"]
    )


async def create_cases(
    settings: Settings,
    client: Client,
    *,
    count: int,
    api_url: str,
    stripe_url: str,
    webhook_secret: str | None,
    recover_after: float,
    console: Console,
) -> list[DemoCase]:
    """Create the failed invoices, wait until each has a case, grant the grace; no waiting."""
    cases: list[DemoCase] = []
    async with httpx.AsyncClient(base_url=stripe_url, timeout=10) as http:
        await _check_standin(http, stripe_url)
        if webhook_secret:
            hook = {"url": f"{api_url.rstrip('/')}/webhooks/stripe", "secret": webhook_secret}
            (await http.post("/_standin/webhooks", json=hook)).raise_for_status()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
        with Progress(*columns, MofNCompleteColumn(), console=console) as progress:
            task = progress.add_task("Failed invoices on the Stripe stand-in", total=count)
            for i, role in enumerate(roles(count)):
                cases.append(await _failed_invoice(http, i, role))
                progress.advance(task)

            async def another() -> str:  # when chance put every customer in one arm
                cases.append(await _failed_invoice(http, len(cases), Role.CANCEL))
                progress.update(task, total=len(cases), advance=1)
                return cases[-1].customer

            arms = await demo_arms.cover(settings, count, [c.customer for c in cases], another)
            task = progress.add_task("Cases opened (webhook → API → Temporal)", total=len(cases))
            for case in cases:
                case.arm = arms.get(case.customer, "")
                await _opened(client, case, http)
                progress.advance(task)
    for case in cases:
        if case.role is Role.GRACE:
            case.plan = await _grant_grace(client, case)
        elif case.role is Role.RECOVER:
            case.plan = f"customer switches to Visa ••4242 in {recover_after:.0f}s: recovered"
        else:
            case.plan = await _left_alone(client, case)
    return cases


def plan_table(cases: list[DemoCase]) -> Table:
    table = Table(title="Demo cases", title_justify="left")
    # Full invoice ids: they are what `temporal workflow describe` and support commands take.
    table.add_column("Invoice", no_wrap=True)
    table.add_column("Card")
    table.add_column("Amount", justify="right", no_wrap=True)
    arms = any(case.arm for case in cases)
    if arms:
        table.add_column("Arm", no_wrap=True)
    table.add_column("What will happen")
    for case in cases:
        amount = f"{case.amount / 100:.2f} {case.currency.upper()}"
        table.add_row(case.invoice, case.card, amount, *([case.arm] if arms else []), case.plan)
    return table


async def recover(
    settings: Settings,
    client: Client,
    cases: list[DemoCase],
    *,
    stripe_url: str,
    recover_after: float,
    console: Console,
) -> None:
    """Play the customers who fix their card, then report how their cases ended."""
    # Its own plain client, not the worker's (the CLI never imports `activities`), with a
    # fixed test key: the stand-in is the only target, and a real key must never go there.
    stripe_client = stripe.StripeClient(
        "sk_test_demo",
        base_addresses={"api": stripe_url},
        http_client=stripe.RequestsClient(timeout=10),
    )
    chosen = [case for case in cases if case.role is Role.RECOVER]
    if not chosen:
        return
    console.print(
        f"[cyan]demo[/]: in {recover_after:.0f}s {len(chosen)} customer(s) switch to a working"
        " card; watch the cases in the Temporal UI"
    )
    await asyncio.sleep(recover_after)
    for case in chosen:
        params: Any = {"invoice_settings": {"default_payment_method": GOOD_CARD}}
        # Stripe emits customer.updated; the API turns it into payment_method_updated.
        try:
            await asyncio.to_thread(stripe_client.v1.customers.update, case.customer, params)
        except stripe.StripeError as err:
            raise UserError(f"switching {case.customer} to a working card failed: {err}") from None
        console.print(f"[cyan]demo[/]: {case.customer} now pays with Visa ••4242 ({case.invoice})")
    for case in chosen:
        try:
            result = await asyncio.wait_for(
                case_handle(client, case.invoice).result(), RECOVERY_TIMEOUT
            )
            console.print(f"[cyan]demo[/]: {case.invoice} {result.outcome.value}")
        except WorkflowFailureError as err:
            console.print(f"[red]demo[/]: {case.invoice} failed: {err.cause}")
        except TimeoutError:
            console.print(
                f"[yellow]demo[/]: {case.invoice} still open after {RECOVERY_TIMEOUT:.0f}s;"
                " see the worker and API output"
            )
