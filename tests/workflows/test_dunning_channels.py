"""Channels through whole cases on the time-skipping server: email and SMS on one step, a
fallback chain, an SMS STOP in the middle of a case, in-app notices and the merchant's signed
case events. Checked at the stand-ins, the merchant's receiver and the ledger."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models.dunning import CaseStatus, Outcome
from models.ledger import Notification
from starter.app import create_app
from starter.cases import start_case
from tests.workflows.helpers import INSUFFICIENT, advance_until, ledger_rows, sent_keys
from tests.workflows.merchant_receiver import SECRET, merchant
from workflows.dunning import DunningWorkflow

POLICY = """
name: channels_test
max_attempts: 4
min_charge_spacing: 1h
steps:
  - {offset: 1d, retry: true, template: payment_failed, level: friendly,
     notify: {channels: [sms, email], mode: first}}
  - {offset: 3d, retry: true, template: reminder, level: reminder,
     notify: {channels: [email, sms, in_app], mode: all}}
  - {offset: 5d, retry: true, template: urgent, level: urgent,
     notify: {channels: [email, sms], mode: all}}
final: {action: cancel_subscription, after: 7d}
grace: {max_days_per_grant: 3, max_total_days: 6}
"""


def phone() -> str:
    return f"+346{random.randrange(10**7, 10**8)}"  # a valid Spanish mobile, new per test


def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "channels_test.yaml"
    path.write_text(POLICY)
    return str(path)


def by_channel(ledger, invoice: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    rows = ledger_rows(ledger, Notification, invoice)
    return [(n.template, n.channel, n.status) for n in rows]


async def test_default_policy_texts_urgent_and_final_notices_beside_the_email(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger, twilio
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    number = phone()
    stripe_control.sdk.v1.customers.update(case.customer, params={"phone": number})
    async with run_worker(time_env.client, **twilio.settings) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()
        state = await handle.query(DunningWorkflow.status)

    assert result.outcome == Outcome.SUBSCRIPTION_CANCELED
    assert sent_keys(sendgrid, case.invoice) == ["step:2", "step:3", "step:4", "step:5", "final"]
    texts = twilio.messages(number)
    assert len(texts) == 2
    assert "overdue" in texts[0]["body"] and "final notice" in texts[1]["body"]
    assert all(t["body"].endswith("Reply STOP to opt out.") for t in texts)
    sms_rows = [(t, s) for t, c, s in by_channel(ledger, case.invoice) if c == "sms"]
    assert sms_rows == [("urgent", "sent"), ("final_notice", "sent")]
    assert "urgent:sms" in state.notifications_sent and "urgent" in state.notifications_sent


async def test_first_mode_falls_back_to_email_without_a_phone_and_in_app_is_stored(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger, twilio, tmp_path
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    async with run_worker(
        time_env.client, dunning_policy=policy_file(tmp_path), **twilio.settings
    ) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: "reminder:in_app" in s.notifications_sent)
        await handle.terminate("test done")

    # No phone, known at opening: the chain goes on to email without calling Twilio (no row).
    rows = by_channel(ledger, case.invoice)
    assert rows[:3] == [
        ("payment_failed", "email", "sent"),
        ("reminder", "email", "sent"),
        ("reminder", "in_app", "sent"),
    ]
    assert twilio.messages() == []
    assert sent_keys(sendgrid, case.invoice) == ["step:1", "step:2"]


async def test_stop_mid_case_ends_the_texts_but_not_the_emails(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, ledger, twilio,
    settings, tmp_path,
) -> None:  # fmt: skip
    case = stripe_control.failed_invoice(INSUFFICIENT)
    number = phone()
    stripe_control.sdk.v1.customers.update(case.customer, params={"phone": number})
    api_settings = settings.model_copy(update={"twilio_auth_token": twilio.auth_token})
    app = create_app(api_settings, client=time_env.client, ledger=ledger)
    async with run_worker(
        time_env.client, dunning_policy=policy_file(tmp_path), **twilio.settings
    ) as task_queue:
        app.state.settings = api_settings.model_copy(update={"dunning_task_queue": task_queue})
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: "reminder:sms" in s.notifications_sent)
        assert len(twilio.messages(number)) == 2  # steps 1 and 2 texted

        params = {"MessageSid": "SM" + "1" * 32, "From": number, "To": "+14155550100",
                  "Body": "STOP", "OptOutType": "STOP"}  # fmt: skip
        url = "http://testserver/webhooks/twilio"
        signature = RequestValidator(twilio.auth_token).compute_signature(url, params)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            answer = await http.post(
                "/webhooks/twilio", data=params, headers={"X-Twilio-Signature": signature}
            )
        assert answer.status_code == 200
        state = await advance_until(time_env, handle, lambda s: "urgent" in s.notifications_sent)
        await handle.terminate("test done")

    assert len(twilio.messages(number)) == 2  # nothing after the STOP
    # Step 1 went by SMS only (mode first); the emails go on after the STOP.
    assert sent_keys(sendgrid, case.invoice) == ["step:2", "step:3"]
    assert "urgent:sms" not in state.notifications_sent
    assert ("urgent", "sms") not in [(t, c) for t, c, _ in by_channel(ledger, case.invoice)]
    history = await handle.fetch_history()
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals.count("channel_opt_out") == 1


async def test_merchant_hears_each_case_event_once_signed_despite_a_refusal(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    with merchant(fail_next=1) as (receiver, url):
        async with run_worker(
            time_env.client, dunning_webhook_urls=url, dunning_webhook_secret=SECRET
        ) as task_queue:
            handle = await start_case(time_env.client, case.dunning_input(), task_queue)
            await advance_until(time_env, handle, lambda s: s.attempts >= 1)
            stripe_control.use_card(case.customer, "pm_card_visa")
            result = await handle.result()

    assert (result.status, result.outcome) == (CaseStatus.RECOVERED, Outcome.RECOVERED)
    events = receiver.events()
    assert [e["type"] for e in events] == [
        "dunning.case.opened",
        "dunning.case.step",
        "dunning.case.step",
        "dunning.case.recovered",
    ]
    assert len({e["id"] for e in events}) == len(events) and receiver.repeats == []
    assert receiver.refused == [events[0]["id"]]  # the first delivery was refused, then retried
    assert [e["data"].get("step") for e in events[1:3]] == [1, 2]
    assert events[3]["data"]["outcome"] == "recovered"
    assert all(e["data"]["invoice_id"] == case.invoice for e in events)
