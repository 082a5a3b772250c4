"""`POST /webhooks/sendgrid`: signatures checked against the configured public key; each event
moves its email's status forward only, engagement sets `read_at` once, unsubscribes opt the
address out and tell the running cases; repeats change nothing; a failing ledger or Temporal
answers 503 so that SendGrid sends the batch again."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.channel_store import ChannelStore
from models.ledger import Notification
from models.settings import Settings
from models.store import Ledger, make_engine
from starter.app import create_app
from tests.starter.webhook_cases_helpers import idle_case, later_signals

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def signed(
    body: bytes, key: ec.EllipticCurvePrivateKey = KEY, at: int | None = None
) -> dict[str, str]:
    """The headers SendGrid's Signed Event Webhook adds: ECDSA of timestamp + raw body."""
    timestamp = str(int(time.time()) if at is None else at)
    der = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(der).decode(),
    }


def event(kind: str, message_id: str, email: str, at: int | None = None, **extra: Any) -> dict:
    return {
        "email": email,
        "timestamp": int(time.time()) if at is None else at,
        "event": kind,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": f"{message_id}.filter0001.16648.5515E0B88.0",
        **extra,
    }


class Hook:
    """An in-process client of the app posting signed batches."""

    def __init__(self, settings: Settings, ledger: Ledger, client: Client | None = None) -> None:
        self.app = create_app(settings, client=client, ledger=ledger, temporal_timeout=1)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://dunning.test"
        )

    async def post(self, events: Any, **sign: Any) -> httpx.Response:
        body = json.dumps(events).encode()
        return await self.http.post(
            "/webhooks/sendgrid", content=body, headers=signed(body, **sign)
        )


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "sendgrid_webhook_public_key": PUBLIC_KEY,
            "temporal_address": "127.0.0.1:1",  # unreachable unless a test passes a client
            "dunning_task_queue": f"sendgrid-hooks-{uuid.uuid4().hex[:8]}",
        }
    )


@pytest.fixture
async def hook(hook_settings: Settings, ledger: Ledger) -> AsyncIterator[Hook]:
    hook = Hook(hook_settings, ledger)
    yield hook
    await hook.http.aclose()


def emailed(ledger: Ledger, email: str, **case: str) -> str:
    """An open case (`invoice`, `customer` when given) that emailed `email`; the X-Message-Id
    its send stored."""
    message_id = uuid.uuid4().hex[:22]
    invoice = case.get("invoice") or f"in_{uuid.uuid4().hex[:14]}"
    customer = case.get("customer") or f"cus_{uuid.uuid4().hex[:14]}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id=customer,
        amount_due=1200, currency="eur", policy="default", opened_at=datetime.now(UTC),
    )  # fmt: skip
    with ledger.sessions.begin() as session:
        session.add(
            Notification(
                invoice_id=invoice, dedupe_key=f"dunning-{invoice}:step:1", channel="email",
                template="payment_failed", status="sent", to_address=email,
                provider_message_id=message_id,
            )
        )  # fmt: skip
    return message_id


def row(ledger: Ledger, message_id: str) -> Notification:
    with ledger.sessions() as session:
        return session.query(Notification).filter_by(provider_message_id=message_id).one()


def address() -> str:
    return f"customer-{uuid.uuid4().hex[:10]}@example.com"


async def test_a_missing_forged_altered_or_stale_signature_is_refused(
    hook: Hook, ledger: Ledger
) -> None:
    email = address()
    message_id = emailed(ledger, email)
    body = json.dumps([event("bounce", message_id, email, reason="550")]).encode()
    url = "/webhooks/sendgrid"
    other = ec.generate_private_key(ec.SECP256R1())
    refused = [
        await hook.http.post(url, content=body),
        await hook.http.post(url, content=body, headers=signed(body, other)),
        await hook.http.post(url, content=body + b" ", headers=signed(body)),
        await hook.http.post(url, content=body, headers=signed(body, at=int(time.time()) - 900)),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    reasons = [r.json()["error"] for r in refused]
    assert reasons[0].startswith("missing") and "away from now" in reasons[3]
    assert reasons[1] == reasons[2] == "invalid X-Twilio-Email-Event-Webhook-Signature"
    assert row(ledger, message_id).status == "sent"


async def test_without_a_verification_key_every_delivery_is_refused(
    hook_settings: Settings, ledger: Ledger
) -> None:
    email = address()
    message_id = emailed(ledger, email)
    keyless = Hook(hook_settings.model_copy(update={"sendgrid_webhook_public_key": ""}), ledger)
    answer = await keyless.post([event("delivered", message_id, email)])
    assert answer.status_code == 400 and "SENDGRID_WEBHOOK_PUBLIC_KEY" in answer.text
    assert row(ledger, message_id).status == "sent"


async def test_delivery_moves_forward_only_and_a_bounce_is_the_last_word(
    hook: Hook, ledger: Ledger
) -> None:
    email = address()
    delivered, bounced, dropped = (
        emailed(ledger, email),
        emailed(ledger, email),
        emailed(ledger, email),
    )
    batch = [
        event("processed", delivered, email),
        event("delivered", delivered, email),
        event("deferred", delivered, email, response="400 try again later"),
        event("processed", bounced, email),
        event("delivered", bounced, email),
        event("bounce", bounced, email, type="bounce", reason="550 5.1.1 no such user"),
        event("delivered", bounced, email),  # late: a delivered never undoes a bounce
        event("dropped", dropped, email, reason="Bounced Address"),
    ]
    answer = await hook.post(batch)
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 8, "updated": 5, "unknown_messages": 0, "ignored": 3, "opt_outs": 0
    }  # fmt: skip
    assert row(ledger, delivered).status == "delivered"
    assert (row(ledger, bounced).status, row(ledger, bounced).error) == (
        "failed", "sendgrid bounce (bounce): 550 5.1.1 no such user"
    )  # fmt: skip
    assert (row(ledger, dropped).status, row(ledger, dropped).error) == (
        "failed", "sendgrid dropped: Bounced Address"
    )  # fmt: skip


async def test_the_first_open_or_click_is_the_engagement_and_the_status_stays(
    hook: Hook, ledger: Ledger
) -> None:
    email = address()
    message_id = emailed(ledger, email)
    opened = int(time.time()) - 60
    batch = [
        event("delivered", message_id, email),
        event("open", message_id, email, at=opened, sg_machine_open=False),
        event("click", message_id, email, url="https://pay.example.com"),
    ]
    assert (await hook.post(batch)).status_code == 200
    found = row(ledger, message_id)
    assert found.status == "delivered"
    assert found.read_at == datetime.fromtimestamp(opened, UTC)


async def test_unknown_messages_and_unreadable_entries_are_ignored(hook: Hook) -> None:
    unknown = event("delivered", "unknown00000000000000", address())
    batch = [unknown, "junk", {"event": "delivered", "sg_message_id": None}, {"email": "x@y"}]
    answer = await hook.post(batch)
    assert answer.status_code == 200
    assert (answer.json()["received"], answer.json()["unknown_messages"]) == (2, 1)
    assert (await hook.post({"event": "delivered"})).status_code == 400  # not an array


async def test_a_repeated_or_late_opt_out_event_changes_nothing(hook: Hook, ledger: Ledger) -> None:
    # No case emailed this address (Temporal is unreachable here): the ledger alone decides.
    email, now, message_id = address(), int(time.time()), uuid.uuid4().hex[:22]
    store = ChannelStore(ledger.sessions)
    unsubscribed = event("group_unsubscribe", message_id, email, at=now - 20, asm_group_id=1)
    resubscribed = event("group_resubscribe", message_id, email, at=now - 10, asm_group_id=1)
    assert (await hook.post([unsubscribed])).status_code == 200
    assert store.is_opted_out("email", email)
    assert (await hook.post([resubscribed])).status_code == 200
    assert (await hook.post([unsubscribed, resubscribed])).status_code == 200  # redelivered
    assert not store.is_opted_out("email", email)
    assert (await hook.post([event("spamreport", message_id, email.upper())])).status_code == 200
    assert store.is_opted_out("email", email)


async def test_an_unsubscribe_tells_the_running_case_once(
    hook_settings: Settings,
    ledger: Ledger,
    dev_env: WorkflowEnvironment,
    idle_cases: list[tuple[Client, str]],
) -> None:
    hook = Hook(hook_settings, ledger, client=dev_env.client)
    case = await idle_case(dev_env.client, hook_settings.dunning_task_queue, idle_cases)
    email = address()
    message_id = emailed(ledger, email, invoice=case.invoice_id, customer=case.customer_id)
    unsubscribe = event("unsubscribe", message_id, email)

    for _ in range(2):  # the second: SendGrid's redelivery of the same event
        assert (await hook.post([unsubscribe])).status_code == 200

    assert ChannelStore(ledger.sessions).is_opted_out("email", email)
    assert await later_signals(dev_env.client, case.invoice_id) == [
        (
            "channel_opt_out",
            {"channel": "email", "opted_out": True, "source": "SendGrid unsubscribe"},
        )
    ]


async def test_temporal_or_the_ledger_down_answers_503_for_a_redelivery(
    hook: Hook, hook_settings: Settings, ledger: Ledger
) -> None:
    email = address()
    message_id = emailed(ledger, email)  # an open case: its customer must be told
    answer = await hook.post([event("unsubscribe", message_id, email)])
    assert answer.status_code == 503
    assert ChannelStore(ledger.sessions).is_opted_out("email", email)  # the ledger knows

    gone = Ledger(make_engine("postgresql://dunning@127.0.0.1:1/none"))
    answer = await Hook(hook_settings, gone).post([event("delivered", message_id, email)])
    assert answer.status_code == 503
