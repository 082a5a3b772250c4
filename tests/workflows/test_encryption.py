"""Customer data never reaches Temporal in clear text, and key rotation keeps cases running.

The suite's clients and workers all encrypt (tests/conftest.py). Here a client WITHOUT the
codec reads what Temporal stores, as anyone with the database or a backup could.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
)
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models.codec import KEY_ID, new_key, parse_keyring
from models.dunning import CaseStatus, GrantGraceInput, PaymentMethodUpdatedInput
from models.settings import Settings
from models.store import Ledger
from models.temporal import converter_for
from starter.cases import start_case
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.workflows.helpers import EXPIRED
from worker import build_activities, build_worker
from workflows.dunning import DunningWorkflow


async def _unkeyed(client: Client) -> Client:
    return await Client.connect(
        client.service_client.config.target_host,
        namespace=client.namespace,
        data_converter=pydantic_data_converter,
    )


def _stored(
    history: WorkflowHistory, description: DescribeWorkflowExecutionResponse
) -> tuple[bytes, str]:
    """Everything Temporal keeps about a case (every event; search attributes, memo and
    summaries from the description) as raw bytes — payload data is bytes there, base64 in
    JSON — and as JSON text, where failure messages and other strings are plain."""
    raw = b"".join(event.SerializeToString() for event in history.events)
    raw += description.SerializeToString()
    return raw, history.to_json()


async def test_a_finished_case_keeps_no_personal_data_in_clear_text(
    time_env: WorkflowEnvironment, run_worker: Any, stripe_control: StripeControl, sendgrid: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    name, email = f"Zelda Quixote{tag}", f"zelda.{tag}@example.org"
    phone = "+49151" + "".join(str(int(c, 16) % 10) for c in tag)
    case = stripe_control.failed_invoice(EXPIRED, name=name, email=email)
    stripe_control.sdk.v1.customers.update(case.customer, params={"phone": phone})
    client = time_env.client
    async with run_worker(client) as task_queue:
        handle = await start_case(client, case.dunning_input(), task_queue)
        await eventually(lambda: handle.query(DunningWorkflow.status), lambda s: s.total_steps > 0)
        reason = f"{name} called from {phone}, write to {email}"
        await handle.execute_update(
            DunningWorkflow.grant_grace, GrantGraceInput(days=2, reason=reason, by="ops")
        )
        result = await handle.result()  # the time-skipping server runs the whole schedule
    assert result.status == CaseStatus.CANCELED
    assert sendgrid.messages(case.invoice), "emails went out, so the address was in use"

    stranger = await _unkeyed(client)
    view = stranger.get_workflow_handle(handle.id)
    description = await stranger.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    raw, text = _stored(await view.fetch_history(), description)
    for secret in (email, name, phone, phone.removeprefix("+")):
        assert secret.encode() not in raw, f"{secret!r} stored in clear text"
        assert secret not in text, f"{secret!r} stored in clear text"
    assert b"binary/encrypted" in raw

    # The control: with the keys, the same history holds the customer's address.
    keyed = await handle.fetch_history()
    # Activity results, and local activities' results (kept in their markers' details).
    payloads = [
        payload
        for event in keyed.events
        if event.HasField("activity_task_completed_event_attributes")
        for payload in event.activity_task_completed_event_attributes.result.payloads
    ] + [
        payload
        for event in keyed.events
        if event.HasField("marker_recorded_event_attributes")
        for details in event.marker_recorded_event_attributes.details.values()
        for payload in details.payloads
    ]
    codec = client.data_converter.payload_codec
    assert codec is not None
    decoded = [p.data for p in await codec.decode(payloads)]
    assert email in repr(decoded)


async def _case_payload_keys(handle: WorkflowHandle[Any, Any]) -> list[bytes]:
    """The key id of every activity argument and local-activity result the worker wrote, in
    history order (a local activity's input is not kept in history, its result is)."""
    history = await handle.fetch_history()
    payloads: list[Any] = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            payloads += event.activity_task_scheduled_event_attributes.input.payloads
        elif event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            payloads += details["result"].payloads if "result" in details else []
    return [payload.metadata[KEY_ID] for payload in payloads]


async def test_a_running_case_keeps_working_after_the_primary_key_changes(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    ledger: Ledger,
    executor: ThreadPoolExecutor,
    stripe_control: StripeControl,
) -> None:
    old, new = f"k1:{new_key()}", f"k2:{new_key()}"
    target, namespace = dev_env.client.service_client.config.target_host, dev_env.client.namespace

    async def client_with(keys: str) -> Client:
        converter = converter_for(parse_keyring(keys))
        return await Client.connect(target, namespace=namespace, data_converter=converter)

    def worker_on(client: Client, task_queue: str) -> Any:
        activities = build_activities(settings, ledger)
        return build_worker(client, task_queue, activities, executor, shutdown_seconds=5)

    task_queue = f"rotation-{uuid.uuid4().hex[:8]}"
    case = stripe_control.failed_invoice(EXPIRED)
    before = await client_with(old)
    async with worker_on(before, task_queue):
        handle = await start_case(before, case.dunning_input(), task_queue)
        await eventually(lambda: handle.query(DunningWorkflow.status), lambda s: s.total_steps > 0)
    assert set(await _case_payload_keys(handle)) == {b"k1"}

    # Deploy `k2:…,k1:…`: the worker restarts with a new primary, the old key still decrypts.
    after = await client_with(f"{new},{old}")
    async with worker_on(after, task_queue):
        rotated = after.get_workflow_handle_for(DunningWorkflow.run, handle.id)
        state = await rotated.query(DunningWorkflow.status)  # replays k1 history, answers in k2
        assert state.status == CaseStatus.ACTIVE
        stripe_control.use_card(case.customer, "pm_card_visa")
        await rotated.signal(
            DunningWorkflow.payment_method_updated,
            PaymentMethodUpdatedInput(payment_method_id="pm_card_visa"),
        )
        result = await rotated.result()
    assert result.status == CaseStatus.RECOVERED
    assert set(await _case_payload_keys(rotated)) == {b"k1", b"k2"}
