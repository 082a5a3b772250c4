"""Webhook channel: Standard Webhooks signatures a receiver verifies, a stable webhook-id, and
one delivery per endpoint across Temporal's retries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.merchant_webhooks import (
    MerchantWebhookActivities,
    WebhookDeliveryError,
    summary,
    webhook_id,
)
from activities.webhook_signing import sign
from models.activities import NotificationInput, NotificationResult
from models.dunning import Outcome
from models.notification_store import NotificationStore
from models.store import Ledger
from tests.activities.conftest import open_case
from tests.standin_control import StripeControl
from tests.workflows.merchant_receiver import SECRET, merchant, verify


def test_signature_matches_the_specs_example() -> None:
    # The example in the Standard Webhooks spec (its secret, id, timestamp and payload).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


@pytest.fixture
def event(stripe_control: StripeControl, ledger: Ledger) -> NotificationInput:
    case = stripe_control.failed_invoice("pm_card_chargeDeclinedInsufficientFunds")
    open_case(ledger, case)
    return NotificationInput(
        invoice_id=case.invoice, dedupe_key=f"dunning-{case.invoice}:event:opened",
        channel="webhook", event="dunning.case.opened", customer_id=case.customer,
        customer_name="Ada Lovelace", to_email="ada@example.com", amount_due=1200,
        currency="eur", occurred_at=datetime(2026, 11, 28, 12, tzinfo=UTC),
    )  # fmt: skip


def activities(ledger: Ledger, *urls: str) -> MerchantWebhookActivities:
    return MerchantWebhookActivities(
        httpx.Client(timeout=5), NotificationStore(ledger.sessions), urls, SECRET
    )


def run(
    acts: MerchantWebhookActivities, input: NotificationInput, attempt: int
) -> NotificationResult:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env.run(acts.send_webhook, input)


def test_signed_ids_only_and_once_per_endpoint_despite_a_retry(
    event: NotificationInput, ledger: Ledger
) -> None:
    with merchant() as (steady, steady_url), merchant(fail_next=1) as (flaky, flaky_url):
        acts = activities(ledger, steady_url, flaky_url)
        with pytest.raises(WebhookDeliveryError, match="endpoint 2: answered 500"):
            run(acts, event, attempt=1)
        result = run(acts, event, attempt=2)
        assert run(acts, event, attempt=3).status == "sent"  # a late retry sends nothing
        for receiver in (steady, flaky):
            (got,) = receiver.events()
            assert receiver.repeats == []
            assert (
                got["id"] == result.provider_message_id == webhook_id(f"{event.dedupe_key}:webhook")
            )
            assert got["type"] == "dunning.case.opened"
            assert got["timestamp"] == "2026-11-28T12:00:00+00:00"
            assert got["data"]["invoice_id"] == event.invoice_id
            assert got["data"]["summary"] == (
                f"Payment of €12.00 failed for invoice {event.invoice_id}; dunning case opened."
            )
            text = str(got)
            assert "Ada" not in text and "ada@example.com" not in text
        assert flaky.refused == [result.provider_message_id]


@pytest.mark.parametrize(
    ("update", "english", "spanish"),
    [
        ({"event": "dunning.case.step", "step": 3},
         "Step 3 of the dunning case for invoice in_9 (€12.00 due).",
         "Paso 3 del caso de cobro de la factura in_9 (12,00 € pendientes)."),
        ({"event": "dunning.case.recovered", "outcome": Outcome.RECOVERED},
         "Invoice in_9 is paid (€12.00); the case closed as recovered.",
         "La factura in_9 está pagada (12,00 €); el caso se cerró como recovered."),
        ({"event": "dunning.case.final_action", "outcome": Outcome.SUBSCRIPTION_CANCELED},
         "Invoice in_9 remained unpaid (€12.00); the case closed as subscription_canceled.",
         "La factura in_9 quedó sin pagar (12,00 €); el caso se cerró como "
         "subscription_canceled."),
        ({"event": "dunning.case.needs_support", "reason_code": "sms_opt_out"},
         "Invoice in_9 needs a person from support (sms_opt_out).",
         "La factura in_9 necesita que alguien de soporte la atienda (sms_opt_out)."),
    ],
)  # fmt: skip
def test_the_summary_names_ids_amount_and_codes_in_english_by_default(
    update: dict[str, object], english: str, spanish: str
) -> None:
    # The customer's language is not the merchant's: a Spanish customer's event is in English.
    case = NotificationInput.model_validate({
        "invoice_id": "in_9", "dedupe_key": "dunning-in_9:event", "customer_id": "cus_1",
        "customer_name": "Ada Lovelace", "to_email": "ada@example.com", "locale": "es",
        "amount_due": 1200, "currency": "eur", "channel": "webhook", **update,
    })  # fmt: skip
    assert summary(case) == english
    assert summary(case, "es").replace("\xa0", " ") == spanish
    assert "Ada" not in summary(case) + summary(case, "es")


def test_no_endpoints_means_nothing_sent(event: NotificationInput, ledger: Ledger) -> None:
    result = run(activities(ledger), event, attempt=1)
    assert (result.status, result.detail) == ("skipped", "no endpoints")


def test_a_receiver_rejects_a_wrong_secret() -> None:
    body = b'{"type":"x"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": sign("whsec_" + "A" * 44, "msg_1", 1, body.decode()),
    }
    assert not verify(SECRET, headers, body)
