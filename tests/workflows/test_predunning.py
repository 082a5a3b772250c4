"""Pre-dunning end to end: the scan starts one warning per card across scans, and a warning
ends on a card update (the webhook API's plan and fan-out), on a paid renewal, or on a renewal
that fails anyway. Real Temporal servers, the Stripe and SendGrid stand-ins, the test ledger."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from models.ledger import PreDunningCase
from models.predunning import PreDunningInput, PreDunningStatus, ScanInput
from models.store import Ledger
from starter.webhooks.payloads import parse_event
from starter.webhooks.predunning import signal_warnings
from starter.webhooks.routing import SignalMatching, plan
from tests.deadline import eventually
from tests.workflows.predunning_helpers import (
    DAY,
    account_updater,
    expiring,
    predunning_worker,
    renew,
    warnings_sent,
)
from workflows.card_expiry_scan import CardExpiryScanWorkflow
from workflows.predunning import PreDunningWorkflow


def ledger_status(ledger: Ledger, workflow_id: str) -> str | None:
    with ledger.sessions() as session:
        return session.scalar(
            select(PreDunningCase.status).where(PreDunningCase.workflow_id == workflow_id)
        )


async def test_two_scans_start_one_warning_per_card(
    dev_env: WorkflowEnvironment, settings, ledger, executor
) -> None:
    # Real time (the dev server): the warnings stay where they are while both scans run.
    cards = [expiring(settings), expiring(settings, default_on="subscription")]
    client = dev_env.client
    async with predunning_worker(client, settings, ledger, executor) as task_queue:
        first = await client.execute_workflow(
            CardExpiryScanWorkflow.run,
            ScanInput(),
            id=f"scan-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        runs = {
            c.workflow_id: (await client.get_workflow_handle(c.workflow_id).describe()).run_id
            for c in cards
        }
        for card in cards:
            await eventually(
                partial(asyncio.to_thread, ledger_status, ledger, card.workflow_id),
                lambda s: s == "warned",
                what=f"{card.workflow_id} warned",
            )
        second = await client.execute_workflow(
            CardExpiryScanWorkflow.run,
            ScanInput(),
            id=f"scan-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for card in cards:
            described = await client.get_workflow_handle(card.workflow_id).describe()
            assert described.run_id == runs[card.workflow_id]
            state = await client.get_workflow_handle(card.workflow_id).query(
                PreDunningWorkflow.status
            )
            assert state.status == PreDunningStatus.WARNED
            await eventually(
                partial(asyncio.to_thread, warnings_sent, settings, card.workflow_id),
                lambda sent: len(sent) == 1,
                what="one warning",
            )

    assert first.started >= len(cards)
    assert second.started == 0
    assert second.already_running_or_done == first.cards_found


@pytest.mark.parametrize(
    ("payment_method", "outcome"),
    [
        ("pm_card_visa", PreDunningStatus.RENEWED),
        ("pm_card_chargeDeclinedExpiredCard", PreDunningStatus.FAILED_ANYWAY),
    ],
)
async def test_renewal_ends_the_warning_after_the_reminder(
    time_env: WorkflowEnvironment, settings, ledger, executor, payment_method, outcome
) -> None:
    # Renews in three days and an hour: the reminder is due in an hour.
    made = expiring(settings, renews_in=3 * DAY + 3600, payment_method=payment_method)
    client = time_env.client
    async with predunning_worker(client, settings, ledger, executor) as task_queue:
        handle = await client.start_workflow(
            PreDunningWorkflow.run,
            PreDunningInput(card=made.card(), reminder_days=3),
            id=made.workflow_id,
            task_queue=task_queue,
        )
        await eventually(
            lambda: handle.query(PreDunningWorkflow.status),
            lambda s: s.messages == ["warning: sent"],
            what="warning sent",
        )
        renew(settings, made.subscription)  # Stripe bills the renewal (the stand-in's clock)
        result = await handle.result()  # the time-skipping server skips to each timer

    assert result.status == outcome
    assert result.messages == ["warning: sent", "reminder: sent"]
    keys = [
        m["custom_args"]["dunning_dedupe_key"] for m in warnings_sent(settings, made.workflow_id)
    ]
    assert keys == [f"{made.workflow_id}:warning", f"{made.workflow_id}:reminder"]
    assert ledger_status(ledger, made.workflow_id) == outcome.value


async def test_a_card_the_updater_renewed_gets_no_reminder(
    time_env: WorkflowEnvironment, settings, ledger, executor
) -> None:
    # No webhook for it: the reminder's own look at the card finds the new expiry.
    made = expiring(settings, renews_in=3 * DAY + 3600)
    client = time_env.client
    async with predunning_worker(client, settings, ledger, executor) as task_queue:
        handle = await client.start_workflow(
            PreDunningWorkflow.run,
            PreDunningInput(card=made.card(), reminder_days=3),
            id=made.workflow_id,
            task_queue=task_queue,
        )
        await eventually(
            lambda: handle.query(PreDunningWorkflow.status),
            lambda s: s.messages == ["warning: sent"],
            what="warning sent",
        )
        account_updater(settings, made.payment_method, made.exp_year + 4)
        result = await handle.result()

    assert (result.status, result.ended_by) == (
        PreDunningStatus.CARD_UPDATED,
        "the card's expiry was renewed",
    )
    assert result.messages == ["warning: sent"]
    assert len(warnings_sent(settings, made.workflow_id)) == 1
    assert ledger_status(ledger, made.workflow_id) == "card_updated"


async def test_card_update_webhook_ends_the_warning(
    dev_env: WorkflowEnvironment, settings, ledger, executor, stripe_control
) -> None:
    made = expiring(settings)
    client = dev_env.client
    async with predunning_worker(client, settings, ledger, executor) as task_queue:
        handle = await client.start_workflow(
            PreDunningWorkflow.run,
            PreDunningInput(card=made.card()),
            id=made.workflow_id,
            task_queue=task_queue,
        )
        await eventually(
            lambda: handle.query(PreDunningWorkflow.status),
            lambda s: s.messages == ["warning: sent"],
            what="warning sent",
        )
        assert ledger_status(ledger, made.workflow_id) == "warned"
        # The customer adds a new card and makes it the default, as the payment page does.
        stripe_control.use_card(made.customer, "pm_card_mastercard")
        event = customer_updated_event(stripe_control, made.customer)
        decided = plan(parse_event(event))
        assert isinstance(decided, SignalMatching) and decided.predunning is not None
        signalled = await signal_warnings(
            client, ledger, decided.predunning, signaller(client), seconds=10
        )
        result = await handle.result()

    assert signalled == [made.workflow_id]
    assert result.status == PreDunningStatus.CARD_UPDATED
    assert result.ended_by == f"stripe:{parse_event(event).id}"
    assert ledger_status(ledger, made.workflow_id) == "card_updated"
    # Ended: a second delivery of the event finds nothing running to signal.
    again = await signal_warnings(client, ledger, decided.predunning, signaller(client), 10)
    assert again == []


def customer_updated_event(stripe_control: Any, customer: str) -> bytes:
    import json

    events = stripe_control.http.get("/events").raise_for_status().json()["events"]
    found = [
        e
        for e in events
        if e["type"] == "customer.updated" and e["data"]["object"]["id"] == customer
    ]
    return json.dumps(found[-1]).encode()


def signaller(client: Client) -> Any:
    async def signal(workflow_id: str, name: str, arg: Any, request_id: str) -> bool:
        try:
            await client.get_workflow_handle(workflow_id).signal(name, arg)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return False
        return True

    return signal
