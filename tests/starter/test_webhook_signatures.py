"""POST /webhooks/stripe refusing bad signatures and bodies: nothing is recorded or signalled."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.store import Ledger
from starter.app import create_app
from tests.starter import payloads as pl
from tests.starter.payloads import API_ENDIVE, OLD_SECRET, SECRET
from tests.starter.webhook_client import Api, event_row


def ignored_event() -> dict[str, Any]:
    return pl.event("charge.succeeded", {"id": pl.new_id("ch"), "object": "charge"})


async def test_valid_signature_is_accepted_and_recorded(api: Api, ledger: Ledger) -> None:
    evt = ignored_event()
    response = await api.deliver(evt)

    assert response.status_code == 200
    assert response.json() == {"ignored": "charge.succeeded", "event": evt["id"]}
    row = event_row(ledger, evt["id"])
    assert row is not None
    assert (row.type, row.status, row.deliveries, row.api_version) == (
        "charge.succeeded",
        "ignored",
        1,
        API_ENDIVE,
    )
    assert row.event_created == datetime.fromtimestamp(evt["created"], UTC)
    assert row.action == "event type charge.succeeded not handled"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_secret", "invalid signature"),
        ("stale", "signature timestamp older than 300 seconds"),
        ("missing_header", "missing Stripe-Signature header"),
        ("tampered_body", "invalid signature"),
        ("garbage_header", "invalid signature"),
    ],
)
async def test_bad_signatures_are_refused(
    api: Api, ledger: Ledger, dev_env: WorkflowEnvironment, case: str, error: str
) -> None:
    invoice = pl.invoice(API_ENDIVE)
    evt = pl.event("invoice.payment_failed", invoice)
    body = pl.body_of(evt)
    if case == "wrong_secret":
        response = await api.deliver(body=body, secret="whsec_someone_else")
    elif case == "stale":
        response = await api.deliver(body=body, timestamp=int(time.time()) - 301)
    elif case == "missing_header":
        response = await api.http.post("/webhooks/stripe", content=body)
    elif case == "tampered_body":
        signature = pl.sign(body)
        response = await api.deliver(body=body.replace(b"2500", b"1"), signature=signature)
    else:
        response = await api.deliver(body=body, signature="t=abc,v0=zzz")

    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert event_row(ledger, evt["id"]) is None
    with pytest.raises(RPCError):
        await dev_env.client.get_workflow_handle(f"dunning-{invoice['id']}").describe()


async def test_secret_rotation_accepts_each_configured_secret(
    dev_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger
) -> None:
    rotating = api_settings.model_copy(update={"stripe_webhook_secret": f"{SECRET}, {OLD_SECRET}"})
    api = Api(create_app(rotating, client=dev_env.client, ledger=ledger))
    old, new, both, other = (ignored_event() for _ in range(4))

    by_old = await api.deliver(old, secret=OLD_SECRET)
    by_new = await api.deliver(new, secret=SECRET)
    # During a roll Stripe signs with both secrets: one v1 entry per secret.
    body = pl.body_of(both)
    now = int(time.time())
    v1_new = pl.sign(body, SECRET, now).split(",")[1]
    v1_old = pl.sign(body, OLD_SECRET, now).split(",")[1]
    by_both = await api.deliver(body=body, signature=f"t={now},{v1_old},{v1_new}")
    by_other = await api.deliver(other, secret="whsec_retired_long_ago")

    assert [r.status_code for r in (by_old, by_new, by_both, by_other)] == [200, 200, 200, 400]
    assert all(event_row(ledger, e["id"]) is not None for e in (old, new, both))
    assert event_row(ledger, other["id"]) is None


async def test_no_secret_configured_refuses_everything(
    dev_env: WorkflowEnvironment, api_settings: Settings, ledger: Ledger
) -> None:
    unset = api_settings.model_copy(update={"stripe_webhook_secret": " , "})
    api = Api(create_app(unset, client=dev_env.client, ledger=ledger))
    evt = ignored_event()

    response = await api.deliver(evt)

    assert (response.status_code, response.json()) == (
        400,
        {"error": "webhook secret not configured"},
    )
    assert event_row(ledger, evt["id"]) is None


async def test_secrets_never_appear_in_logs_or_answers(
    dev_env: WorkflowEnvironment,
    api_settings: Settings,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rotating = api_settings.model_copy(update={"stripe_webhook_secret": f"{SECRET},{OLD_SECRET}"})
    api = Api(create_app(rotating, client=dev_env.client, ledger=ledger))
    caplog.set_level(logging.DEBUG)
    answers = [
        await api.deliver(ignored_event(), secret="whsec_wrong"),
        await api.deliver(ignored_event(), timestamp=int(time.time()) - 3600),
        await api.deliver(body=b"{not json", secret=SECRET),
        await api.deliver(ignored_event()),
    ]

    assert [a.status_code for a in answers] == [400, 400, 400, 200]
    for text in [caplog.text, *(a.text for a in answers)]:
        assert SECRET not in text and OLD_SECRET not in text
        assert "whsec_" not in text


async def test_malformed_json_is_refused(api: Api, ledger: Ledger) -> None:
    response = await api.deliver(body=b'{"id": "evt_1", "type": ')
    not_event = await api.deliver(body=b'{"object": "invoice", "id": "in_1"}')

    assert response.status_code == 400
    assert response.json() == {"error": "body is not JSON: JSONDecodeError"}
    assert not_event.status_code == 400
    assert "expected 'event'" in not_event.json()["error"]
    assert event_row(ledger, "evt_1") is None


async def test_oversize_bodies_are_refused(api: Api, ledger: Ledger) -> None:
    evt = ignored_event()
    evt["data"]["object"]["padding"] = "x" * (1024 * 1024)
    body = pl.body_of(evt)

    declared = await api.deliver(body=body)

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold on the bytes actually read.
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    streamed = await api.http.post(
        "/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": pl.sign(body)}
    )
    lying = await api.http.post(
        "/webhooks/stripe",
        content=chunks(),
        headers={"Stripe-Signature": pl.sign(body), "Content-Length": "100"},
    )

    assert "content-length" not in streamed.request.headers
    for response in (declared, streamed):
        assert (response.status_code, response.json()) == (413, {"error": "body larger than 1 MiB"})
    assert lying.status_code == 413, lying.text
    assert event_row(ledger, evt["id"]) is None
