"""`POST /webhooks/twilio`: signatures checked with the SDK's validator; STOP/START change the
ledger's opt-out at once; delivery reports move a text's status on. The Twilio stand-in posts
the real, signed webhooks to the API served over HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from twilio.request_validator import RequestValidator

from models.channel_store import ChannelStore
from models.ledger import Notification
from models.settings import Settings
from models.store import Ledger
from standins.server import BackgroundServer
from starter.app import create_app
from tests.conftest import TwilioControl
from tests.deadline import eventually_sync


@pytest.fixture
def api(settings: Settings, ledger: Ledger, twilio: TwilioControl) -> Iterator[str]:
    api_settings = settings.model_copy(
        update={"twilio_auth_token": twilio.auth_token, "temporal_address": "127.0.0.1:1"}
    )
    with BackgroundServer(create_app(api_settings, ledger=ledger, temporal_timeout=1)) as server:
        twilio.inbound_url(f"{server.url}/webhooks/twilio")
        yield server.url
    twilio.inbound_url(None)


def number() -> str:
    return f"+346{random.randrange(10**7, 10**8)}"


def test_a_bad_or_missing_signature_is_refused(api: str, twilio: TwilioControl) -> None:
    params = {"MessageSid": "SM1", "From": number(), "Body": "STOP"}
    assert httpx.post(f"{api}/webhooks/twilio", data=params).status_code == 400
    forged = RequestValidator("0" * 32).compute_signature(f"{api}/webhooks/twilio", params)
    answer = httpx.post(
        f"{api}/webhooks/twilio", data=params, headers={"X-Twilio-Signature": forged}
    )
    assert answer.status_code == 400


def test_stop_opts_out_at_once_and_start_opts_back_in(
    api: str, twilio: TwilioControl, ledger: Ledger
) -> None:
    store, phone = ChannelStore(ledger.sessions), number()
    twilio.text_from(phone, "stop")  # Temporal is unreachable here: the ledger still knows
    eventually_sync(lambda: store.is_opted_out("sms", phone), what="opted out")
    twilio.text_from(phone, "START")
    eventually_sync(lambda: not store.is_opted_out("sms", phone), what="opted back in")


def test_a_delivery_report_moves_the_status_forward_only(
    api: str, twilio: TwilioControl, ledger: Ledger, stripe_control
) -> None:
    case = stripe_control.failed_invoice("pm_card_chargeDeclinedInsufficientFunds")
    ledger.open_case(
        invoice_id=case.invoice, workflow_id=f"dunning-{case.invoice}", customer_id=case.customer,
        amount_due=1200, currency="eur", policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    with ledger.sessions.begin() as session:
        session.add(
            Notification(
                invoice_id=case.invoice, dedupe_key=f"dunning-{case.invoice}:step:4:sms",
                channel="sms", template="urgent", status="sent",
                provider_message_id="SM" + "9" * 32,
            )
        )  # fmt: skip
    url = f"{api}/webhooks/twilio"
    validator = RequestValidator(twilio.auth_token)
    for status in ("delivered", "sent"):  # out of order: a late "sent" changes nothing
        params = {"MessageSid": "SM" + "9" * 32, "MessageStatus": status}
        signature = validator.compute_signature(url, params)
        answer = httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200
    with ledger.sessions() as session:
        row = session.query(Notification).filter_by(provider_message_id="SM" + "9" * 32).one()
        assert row.status == "delivered"
