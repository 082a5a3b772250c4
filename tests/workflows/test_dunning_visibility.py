"""What ops see on a real dev server: search attributes, summaries, details, handler docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.dunning import CaseStatus, GrantGraceInput
from starter.cases import start_case
from tests.deadline import eventually
from tests.workflows.helpers import INSUFFICIENT, advance_until
from workflows import search_attributes as sa
from workflows.dunning import DunningWorkflow


async def listed(client: Client, query: str, expected: int, within: float = 15) -> list[str]:
    """Visibility is eventually consistent: poll until the list settles on `expected` ids."""

    async def ids() -> list[str]:
        return [wf.id async for wf in client.list_workflows(query)]

    return await eventually(ids, lambda found: len(found) == expected, within, what=query)


async def test_search_attributes_summaries_and_details(
    dev_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    client = dev_env.client
    small = stripe_control.failed_invoice(INSUFFICIENT, amount=500, currency="eur")
    big = stripe_control.failed_invoice(INSUFFICIENT, amount=250000, currency="eur")
    async with run_worker(client) as task_queue:
        handles = [
            await start_case(client, case.dunning_input(policy="demo"), task_queue)
            for case in (small, big)
        ]
        for handle in handles:
            await advance_until(dev_env, handle, lambda s: s.attempts == 1, step=timedelta(0))
        await handles[1].execute_update(
            DunningWorkflow.grant_grace, GrantGraceInput(days=2, reason="r", by="ops")
        )

        by_customer = await listed(client, f"CustomerId = '{small.customer}'", 1)
        assert by_customer == [f"dunning-{small.invoice}"]
        running = f"DunningStatus = 'active' AND InvoiceId IN ('{small.invoice}', '{big.invoice}')"
        assert sorted(await listed(client, running, 2)) == sorted(h.id for h in handles)
        over = await listed(client, f"AmountDue > 100000 AND InvoiceId = '{big.invoice}'", 1)
        assert over == [handles[1].id]
        soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        due = await listed(client, f"NextActionAt < '{soon}' AND InvoiceId = '{small.invoice}'", 1)
        assert due == [handles[0].id]
        declined = await listed(
            client, f"DeclineCode = 'insufficient_funds' AND CustomerId = '{big.customer}'", 1
        )
        assert declined == [handles[1].id]

        description = await handles[0].describe()
        assert (
            await description.static_summary()
            == f"Dunning {small.invoice} · {small.customer} · EUR 5.00"
        )
        assert "policy `demo`" in (await description.static_details() or "")
        attributes = description.typed_search_attributes
        assert attributes.get(sa.DUNNING_STEP) == 1
        assert attributes.get(sa.CURRENCY) == "EUR"
        assert attributes.get(sa.SUBSCRIPTION_ID) == small.subscription

        metadata = await handles[1].query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        details = metadata.current_details
        assert details.startswith(f"## Dunning {big.invoice} · **active**")
        assert "- **Next:** step 2/5" in details and "Grace: **2 days**" in details
        assert "@" not in details and "Stand-in Customer" not in details
        definition = metadata.definition
        described = {d.name: d.description for d in definition.signal_definitions}
        assert set(described) >= {
            "payment_succeeded",
            "payment_failed",
            "payment_method_updated",
            "grant_grace",
            "pause",
            "resume",
            "retry_now",
            "stop",
        }
        assert all(described.values())
        updates = {d.name: d.description for d in definition.update_definitions}
        support = {"grant_grace", "pause", "resume", "retry_now", "stop"}
        customer = {f"customer_{name}" for name in ("new_card", "pay_now", "more_time",
                    "pause_subscription", "cancel", "contact")}  # fmt: skip
        assert set(updates) == support | customer
        assert all(updates.values())
        assert {d.name for d in definition.query_definitions} >= {"status"}

        history = await handles[0].fetch_history()
        encoded = [
            e.user_metadata.summary
            for e in history.events
            if e.HasField("user_metadata") and e.user_metadata.HasField("summary")
        ]
        # Summaries are payloads: with the payload codec they are encrypted like the rest.
        codec = client.data_converter.payload_codec
        decoded = await codec.decode(encoded) if codec else encoded
        summaries = [payload.data.decode() for payload in decoded]
        assert any("Wait for step 1/5" in s for s in summaries)
        assert any("Charge attempt 1 (schedule)" in s for s in summaries)
        assert any("Read invoice" in s for s in summaries)

        for handle in handles:
            await handle.terminate("test done")
        state = await handles[0].query(DunningWorkflow.status)
        assert state.status == CaseStatus.ACTIVE  # a terminated run keeps its last state
