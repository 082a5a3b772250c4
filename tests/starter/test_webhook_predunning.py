"""A card-update webhook, through the API and its relay, ends the customer's card-expiry
warning: the plan's pre-dunning part carried out by the executor (dev server, real relay)."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from models.predunning import PreDunningInput, PreDunningStatus
from tests.deadline import eventually
from tests.starter import payloads as pl
from tests.starter.webhook_client import Api
from tests.workflows.predunning_helpers import expiring, predunning_worker
from workflows.predunning import PreDunningWorkflow


@pytest.mark.parametrize(
    "kind", ["payment_method.attached", "setup_intent.succeeded", "customer.updated"]
)
async def test_card_update_event_ends_the_customers_warning(
    api: Api, dev_env: WorkflowEnvironment, settings, ledger, executor, kind: str
) -> None:
    from tests.starter.webhook_cases_helpers import method_event

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
        new_card = pl.new_id("pm")
        evt = method_event(kind, made.customer, new_card, pl.API_ENDIVE)
        response = await api.deliver(evt)
        result = await handle.result()

    assert response.status_code == 200, response.text
    assert response.json()["action"] == f"signalled card_updated to {made.workflow_id}"
    assert (result.status, result.ended_by) == (
        PreDunningStatus.CARD_UPDATED,
        f"stripe:{evt['id']}",
    )
