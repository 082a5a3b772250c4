"""What happened to each case, from the Stripe and SendGrid stand-ins, the ledger and Temporal's
record of the execution, never from what the workflow reports about itself."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from temporalio.client import Client, WorkflowExecutionStatus

from activities.claim_lookups import ClaimLookups
from activities.email import EmailActivities, make_sendgrid_client
from benchmarks.faults_cases import EXPECTED, Case, SendgridStandin, StripeStandin
from benchmarks.faults_relay import Delivery
from models.claim_sweep import sweep_claims
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger, make_engine
from workflows.search_attributes import workflow_id_for

DELIVERED = {"sent", "rejected", "no_address"}
# Settled by the claim sweep: the case ended before the message went out (never at SendGrid).
WITHDRAWN = "withdrawn"
LOSSES = ("double", "dup_email", "undelivered", "lost_outcome", "lost_webhook", "wrong_cancel")
COLUMNS = {
    "cases": "cases",
    "finished": "finished",
    "stuck": "failed/stuck",
    "double": "double charges",
    "dup_email": "dup emails",
    "undelivered": "never delivered",
    "lost_outcome": "lost outcomes",
    "lost_webhook": "lost webhooks",
    "wrong_cancel": "canceled though paid",
}


@dataclass
class Row:
    scenario: str
    counts: Counter[str] = field(default_factory=Counter)
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, column: str, case: Case, why: str) -> None:
        self.counts[column] += 1
        self.evidence.append(f"{self.scenario} {case.invoice} ({case.role}): {why}")

    @property
    def losses(self) -> int:
        return sum(self.counts[c] for c in (*LOSSES, "stuck"))


def _ledger(url: str, invoices: list[str]) -> dict[str, Any]:
    engine = sa.create_engine(url)

    def rows(sql: str) -> list[Any]:
        query = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
        return list(conn.execute(query, {"ids": invoices}).all())

    try:
        with engine.connect() as conn:
            return {
                "cases": {
                    r[0] for r in rows("SELECT invoice_id FROM cases WHERE invoice_id IN :ids")
                },
                "outcomes": {
                    r[0]: r[1]
                    for r in rows(
                        "SELECT invoice_id, outcome FROM outcomes WHERE invoice_id IN :ids"
                    )
                },
                "notifications": rows(
                    "SELECT invoice_id, dedupe_key, status, error FROM notifications"
                    " WHERE invoice_id IN :ids"
                ),
            }
    finally:
        engine.dispose()


async def _runs(client: Client, case: Case) -> list[WorkflowExecutionStatus | None]:
    query = f"WorkflowId = '{workflow_id_for(case.invoice)}'"
    return [execution.status async for execution in client.list_workflows(query)]


async def measure(
    scenario: str,
    cases: list[Case],
    client: Client,
    stripe: StripeStandin,
    sendgrid: SendgridStandin,
    database_url: str,
    deliveries: list[Delivery],
) -> Row:
    row = Row(scenario)
    row.counts["cases"] = len(cases)
    ledger = _ledger(database_url, [c.invoice for c in cases])
    sent: dict[str, list[str]] = {}  # dedupe key -> when SendGrid accepted each copy
    for message in await sendgrid.messages():
        key = message["custom_args"].get("dunning_dedupe_key")
        if key:
            sent.setdefault(key, []).append(str(message["received_at"])[11:19])
    notifications: dict[str, list[Any]] = {}
    for note in ledger["notifications"]:
        notifications.setdefault(note[0], []).append(note)
    by_invoice = {c.invoice: c for c in cases}
    by_customer = {c.customer: c for c in cases}
    refused: list[str] = []
    paid = {
        case.invoice: await _measure_case(row, case, client, stripe, ledger, sent, notifications)
        for case in cases
    }
    for delivery in deliveries:
        obj = delivery.obj
        found = by_invoice.get(str(obj.get("id"))) or by_customer.get(str(obj.get("id")))
        if found is None and isinstance(obj.get("customer"), str):
            found = by_customer.get(obj["customer"])
        if found is None:
            continue
        case = found
        if not delivery.accepted:
            row.add("lost_webhook", case, f"{delivery.type} {delivery.id} never accepted: "
                    f"{delivery.history()}")  # fmt: skip
        elif _new_card(delivery, case) and not paid[case.invoice]:
            # The customer gave a working card and the API said 200, yet it was never charged.
            why = f"{delivery.type} {delivery.id} answered {delivery.history()}, card never charged"
            row.add("lost_webhook", case, why)
        elif delivery.id == case.start_event and delivery.answers[0] != "200":
            refused.append(delivery.history())
    if refused:
        row.notes.append(f"{len(refused)} start events refused at first, then accepted: "
                         f"{', '.join(sorted(set(refused)))}")  # fmt: skip
    return row


def _new_card(delivery: Delivery, case: Case) -> bool:
    previous = delivery.event["data"].get("previous_attributes") or {}
    return (
        case.role == "new_card"
        and delivery.type == "customer.updated"
        and "invoice_settings" in previous
    )


async def _measure_case(
    row: Row,
    case: Case,
    client: Client,
    stripe: StripeStandin,
    ledger: dict[str, Any],
    sent: dict[str, list[str]],
    notifications: dict[str, list[Any]],
) -> bool:
    """Adds the case's losses to `row`; returns whether Stripe has the invoice paid."""
    runs = await _runs(client, case)
    status = runs[0] if runs else None
    if status == WorkflowExecutionStatus.COMPLETED and len(runs) == 1:
        row.counts["finished"] += 1
    else:
        row.add("stuck", case, f"runs {[s.name if s else None for s in runs]}")
    if not runs or case.invoice not in ledger["cases"]:
        in_ledger = case.invoice in ledger["cases"]
        why = f"start event {case.start_event}: {len(runs)} runs, ledger case {in_ledger}"
        row.add("lost_webhook", case, why)
    elif len(runs) > 1:
        row.add("lost_webhook", case, f"started {len(runs)} times")
    outcome = ledger["outcomes"].get(case.invoice)
    closed = status is not None and status != WorkflowExecutionStatus.RUNNING
    if closed and outcome is None:
        row.add("lost_outcome", case, f"closed {status.name if status else ''} without outcome")
    elif outcome is not None and outcome not in EXPECTED[case.role]:
        row.notes.append(f"{case.invoice} ({case.role}): outcome {outcome}")
    row.notes.extend(f"{case.invoice} ({case.role}): {n}" for n in case.notes)

    charges = (await stripe.get(f"/_standin/invoices/{case.invoice}/charges"))["attempts"]
    succeeded = [c for c in charges if c["outcome"] == "succeeded"]
    if len(succeeded) > 1:
        keys = [c["idempotency_key"] for c in succeeded]
        row.add("double", case, f"{len(succeeded)} successful charges, keys {keys}")
    invoice = await stripe.get(f"/v1/invoices/{case.invoice}")
    subscription = await stripe.get(f"/v1/subscriptions/{case.subscription}")
    if subscription["status"] == "canceled" and (
        invoice["status"] == "paid" or case.role in ("new_card", "paid")
    ):
        row.add("wrong_cancel", case, f"subscription canceled, invoice {invoice['status']}, "
                f"ledger outcome {outcome}")  # fmt: skip

    for _, key, state, error in notifications.get(case.invoice, []):
        copies = len(sent.get(key, []))
        if copies > 1:
            why = f"{key} reached SendGrid at {sent[key]}; ledger {state} ({error})"
            row.add("dup_email", case, why)
        if state == WITHDRAWN:
            if copies:
                row.add("undelivered", case, f"{key} withdrawn, yet SendGrid has {copies}")
        elif state not in DELIVERED:
            row.add("undelivered", case, f"{key} is {state} ({error}); at SendGrid: {copies}")
        elif state == "sent" and copies == 0:
            row.add("undelivered", case, f"{key} is sent in the ledger but not at SendGrid")
    return bool(invoice["status"] == "paid")


def table(rows: list[Row]) -> str:
    widths = {k: max(len(v), 3) for k, v in COLUMNS.items()}
    name_width = max(len("scenario"), *(len(r.scenario) for r in rows))
    header = "| " + "scenario".ljust(name_width) + " | "
    header += " | ".join(COLUMNS[k].rjust(widths[k]) for k in COLUMNS) + " |"
    rule = "|" + "-" * (name_width + 2) + "|"
    rule += "|".join("-" * (widths[k] + 1) + ":" for k in COLUMNS) + "|"
    lines = [header, rule]
    for r in rows:
        cells = " | ".join(str(r.counts[k]).rjust(widths[k]) for k in COLUMNS)
        lines.append(f"| {r.scenario.ljust(name_width)} | {cells} |")
    return "\n".join(lines)


async def sweep_left_claims(client: Client, database_url: str, sendgrid_url: str) -> list[str]:
    """What the worker's claim sweep (models/claim_sweep.py) does once a case has ended, run
    now rather than after its 10 minutes: claims left by sends that died in cases that took
    another path, settled from the SendGrid stand-in's Email Activity API (which lists at once,
    hence no listing delay)."""
    settings = Settings(
        database_url=database_url,
        sendgrid_api_host=sendgrid_url,
        sendgrid_api_key="SG.faults",
        _env_file=None,  # type: ignore[call-arg]
    )
    ledger = Ledger(make_engine(database_url))
    try:
        email = EmailActivities(
            make_sendgrid_client(settings),
            NotificationStore(ledger.sessions),
            "billing@example.com",
            min_unlisted_age=timedelta(0),
        )
        lookups = ClaimLookups(email).by_channel()
        swept = await sweep_claims(client, ledger, lookups, older_than=timedelta(0))
    finally:
        ledger.engine.dispose()
    return [f"{s.dedupe_key} {s.status}" for s in swept]
