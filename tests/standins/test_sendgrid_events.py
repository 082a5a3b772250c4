"""The SendGrid stand-in's Signed Event Webhook: batches per accepted email, signed with its own
key and verified by the API's verifier; test addresses that bounce, drop or unsubscribe; posted
again after a refusal; single events on demand."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from standins.sendgrid_api import create_app
from standins.sendgrid_api.events import EventWebhookConfig, new_private_key_pem
from standins.server import BackgroundServer
from starter.webhooks.sendgrid_events import SignatureError, verify
from tests.deadline import eventually_sync
from tests.standins.sendgrid_helpers import client, mail


class EventReceiver:
    """Records each signed batch (raw body and headers); refuses the first `refuse` with 500."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: list[tuple[bytes, dict[str, str]]] = []
        self.refuse = 0

        async def record(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.batches.append((body, dict(request.headers)))
                if self.refuse > 0:
                    self.refuse -= 1
                    return Response(status_code=500)
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/events", record, methods=["POST"])])

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for body, _ in self.batches for e in json.loads(body)]


@pytest.fixture
def receiver() -> Iterator[tuple[EventReceiver, str]]:
    receiver = EventReceiver()
    with BackgroundServer(receiver.app) as server:
        yield receiver, f"{server.url}/events"


@pytest.fixture
def standin(receiver: tuple[EventReceiver, str]) -> Iterator[tuple[str, str]]:
    """(URL, public key) of a stand-in posting to the receiver at once."""
    app = create_app(events=EventWebhookConfig(url=receiver[1], delay_seconds=0))
    with BackgroundServer(app) as server:
        yield server.url, app.state.events.public_key
    app.state.events.stop()


def send(url: str, to: str, **custom_args: str) -> str:
    response = client(url).send(mail(to, **custom_args))
    return str(response.headers["X-Message-Id"])


def by_email(events: list[dict[str, Any]], email: str) -> list[str]:
    return [e["event"] for e in events if e["email"] == email]


def test_each_batch_verifies_with_the_public_key_and_names_the_message(
    standin: tuple[str, str], receiver: tuple[EventReceiver, str]
) -> None:
    url, public_key = standin
    hook, _ = receiver
    message_id = send(url, "ana@example.com", dunning_dedupe_key="dunning-in_1:step:1")
    events = eventually_sync(hook.events, lambda e: len(e) == 2, what="processed, delivered")

    assert by_email(events, "ana@example.com") == ["processed", "delivered"]
    assert all(e["sg_message_id"].split(".")[0] == message_id for e in events)
    assert all(e["dunning_dedupe_key"] == "dunning-in_1:step:1" for e in events)
    assert len({e["sg_event_id"] for e in events}) == 2
    body, headers = hook.batches[0]
    timestamp = headers["x-twilio-email-event-webhook-timestamp"]
    signature = headers["x-twilio-email-event-webhook-signature"]
    verify(public_key, body, signature, timestamp)  # raises SignatureError if not
    with pytest.raises(SignatureError):
        verify(public_key, body.replace(b"delivered", b"bounce"), signature, timestamp)
    other = httpx.get(f"{url}/_standin/event_webhook").json()
    assert other["public_key"] == public_key and other["url"] == receiver[1]


def test_test_addresses_bounce_drop_and_unsubscribe(
    standin: tuple[str, str], receiver: tuple[EventReceiver, str]
) -> None:
    url, _ = standin
    hook, _ = receiver
    for to in ("bounce+1@example.com", "dropped@example.com", "unsubscribe@example.com"):
        send(url, to)
    events = eventually_sync(hook.events, lambda e: len(e) == 7, what="seven events")

    assert by_email(events, "bounce+1@example.com") == ["processed", "bounce"]
    assert by_email(events, "dropped@example.com") == ["processed", "dropped"]
    assert by_email(events, "unsubscribe@example.com") == ["processed", "delivered", "unsubscribe"]
    bounce = next(e for e in events if e["event"] == "bounce")
    assert bounce["type"] == "bounce" and bounce["reason"].startswith("550")


def test_a_refused_batch_is_posted_again_signed_anew(
    standin: tuple[str, str], receiver: tuple[EventReceiver, str]
) -> None:
    url, public_key = standin
    hook, _ = receiver
    hook.refuse = 1
    send(url, "ben@example.com")
    eventually_sync(lambda: len(hook.batches), lambda n: n == 2, what="a second delivery")

    assert hook.batches[0][0] == hook.batches[1][0]
    for body, headers in hook.batches:
        verify(
            public_key,
            body,
            headers["x-twilio-email-event-webhook-signature"],
            headers["x-twilio-email-event-webhook-timestamp"],
        )
    posts = httpx.get(f"{url}/_standin/events").json()
    assert [a["status"] for a in posts[0]["attempts"]] == [500, 200]


def test_an_event_on_demand_and_a_given_signing_key(
    receiver: tuple[EventReceiver, str],
) -> None:
    hook, hook_url = receiver
    pem = new_private_key_pem()
    first, second = (
        create_app(events=EventWebhookConfig(private_key_pem=pem, delay_seconds=0)) for _ in "ab"
    )
    assert first.state.events.public_key == second.state.events.public_key  # kept across starts
    with BackgroundServer(first) as server:
        message_id = send(server.url, "cleo@example.com")
        posts = eventually_sync(
            lambda: httpx.get(f"{server.url}/_standin/events").json(), what="one batch kept"
        )
        assert posts[0]["url"] is None and posts[0]["attempts"] == []  # no URL: only listed
        httpx.post(f"{server.url}/_standin/event_webhook", json={"url": hook_url})
        answer = httpx.post(
            f"{server.url}/_standin/events",
            json={"email": "cleo@example.com", "event": "group_resubscribe", "asm_group_id": 7},
        )
        assert answer.status_code == 202
        events = eventually_sync(hook.events, lambda e: len(e) == 1, what="the event")
        missing = httpx.post(
            f"{server.url}/_standin/events", json={"email": "nobody@example.com", "event": "open"}
        )
    first.state.events.stop()
    assert events[0]["event"] == "group_resubscribe" and events[0]["asm_group_id"] == 7
    assert events[0]["sg_message_id"].startswith(f"{message_id}.")
    assert missing.status_code == 404
