"""The SendGrid stand-in's Email Activity API (`GET /v3/messages`), driven through the real SDK."""

from __future__ import annotations

import httpx
import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    ForbiddenError,
    HTTPError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)

from standins.sendgrid_api import create_app
from standins.server import BackgroundServer
from tests.standins.sendgrid_helpers import (
    attempts,
    client,
    feed,
    inject,
    mail,
    messages,
)

DEDUPE = "unique_args['dunning_dedupe_key']=\"dunning-in_1:step:2\""


def test_messages_api_finds_a_message_by_custom_arg(url: str) -> None:
    sent = client(url).send(mail(dunning_dedupe_key="dunning-in_1:step:2"))
    client(url).send(mail(to="other@example.com", dunning_dedupe_key="dunning-in_2:step:2"))
    [entry] = feed(url, DEDUPE, limit=10)
    assert set(entry) == {
        *("msg_id", "from_email", "subject", "to_email", "status"),
        *("opens_count", "clicks_count", "last_event_time"),
    }
    # SendGrid's msg_id starts with the X-Message-Id of the request that sent it.
    assert entry["msg_id"].startswith(sent.headers["X-Message-Id"] + ".")
    assert (entry["to_email"], entry["subject"]) == ("customer@example.com", "Your payment failed")
    assert entry["last_event_time"].endswith("Z")
    both = f'({DEDUPE}) AND to_email="CUSTOMER@example.com"'
    assert [e["msg_id"] for e in feed(url, both)] == [entry["msg_id"]]
    assert feed(url, "unique_args['dunning_dedupe_key']=\"dunning-in_9:step:2\"") == []


@pytest.mark.parametrize(
    ("query", "limit", "field"),
    [
        ("dunning_dedupe_key=in_1", 10, "query"),
        (f'{DEDUPE} OR subject="x"', 10, "query"),
        ('clicks="0"', 10, "query"),
        (f"({DEDUPE}", 10, "query"),
        (DEDUPE, 1001, "limit"),
    ],
)
def test_messages_api_rejects_what_it_cannot_parse(
    url: str, query: str, limit: int, field: str
) -> None:
    with pytest.raises(BadRequestsError) as exc:
        feed(url, query, limit=limit)
    assert [e["field"] for e in exc.value.to_dict["errors"]] == [field]


def test_messages_api_needs_the_same_auth(url: str) -> None:
    sg = client(url)
    sg.client.request_headers.pop("Authorization")
    with pytest.raises(UnauthorizedError):
        sg.client.messages.get(query_params={"query": DEDUPE})
    with BackgroundServer(create_app(api_key="SG.right")) as srv:
        assert feed(srv.url, DEDUPE, key="SG.right") == []
        with pytest.raises(UnauthorizedError):
            feed(srv.url, DEDUPE, key="SG.wrong")


@pytest.mark.parametrize(("status", "exc_type"), [(403, ForbiddenError), (404, NotFoundError)])
def test_messages_api_can_be_unavailable_or_lagging(
    url: str, status: int, exc_type: type[HTTPError]
) -> None:
    client(url).send(mail(dunning_dedupe_key="dunning-in_1:step:2"))
    control = f"{url}/_standin/activity_feed"
    httpx.post(control, json={"available": False, "unavailable_status": status}).raise_for_status()
    with pytest.raises(exc_type):
        feed(url, DEDUPE)
    httpx.post(control, json={"available": True, "lag_seconds": 600}).raise_for_status()
    assert feed(url, DEDUPE) == []  # accepted, but not listed yet
    httpx.post(control, json={"lag_seconds": 0}).raise_for_status()
    assert len(feed(url, DEDUPE)) == 1
    asked = httpx.get(control).json()["queries"]
    assert [(q["query"], q["status"], q["found"]) for q in asked][-1] == (DEDUPE, 200, 1)


def test_messages_api_faults_are_consumed(url: str) -> None:
    inject(url, 503, endpoint="messages")
    with pytest.raises(ServiceUnavailableError):
        feed(url, DEDUPE)
    assert feed(url, DEDUPE) == []


def test_delay_drops_a_request_whose_client_gave_up(url: str) -> None:
    inject(url, mode="delay", delay_seconds=0.6, count=2)
    sg = client(url)
    sg.client.timeout = 0.1
    with pytest.raises(TimeoutError):
        sg.send(mail(invoice_id="in_gone"))
    sg.client.timeout = 5
    assert sg.send(mail(invoice_id="in_waited")).status_code == 202
    # The abandoned request was dropped once its delay ran out; the patient one was accepted.
    assert sorted(a["status"] for a in attempts(url)) == [202, 499]
    assert [m["custom_args"]["invoice_id"] for m in messages(url)] == ["in_waited"]
