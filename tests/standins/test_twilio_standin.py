"""The Twilio stand-in's Messages API, driven through the real `twilio` SDK client."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from activities.twilio_client import make_twilio_client
from standins.twilio_api.config import (
    DEFAULT_ACCOUNT_SID as ACCOUNT,
)
from standins.twilio_api.config import (
    DEFAULT_AUTH_TOKEN as TOKEN,
)
from standins.twilio_api.config import (
    DEFAULT_MESSAGING_SERVICE_SID as SERVICE,
)
from standins.twilio_api.config import (
    DEFAULT_NUMBER as FROM,
)
from tests.deadline import eventually_sync

TO = "+34612345678"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def sdk(url: str, token: str = TOKEN, timeout: float = 10.0) -> Client:
    return make_twilio_client(ACCOUNT, token, url, timeout)


def control(url: str, method: str, path: str, **kwargs: Any) -> Any:
    resp = httpx.request(method, f"{url}/_standin{path}", timeout=10, **kwargs)
    resp.raise_for_status()
    return resp.json()


def sent(url: str) -> list[dict[str, Any]]:
    return list(control(url, "GET", "/messages", params={"direction": "outbound-api"})["messages"])


def test_create_returns_the_queued_message_resource(twilio_url: str) -> None:
    resp = httpx.post(
        twilio_url + MESSAGES,
        data={"To": TO, "From": FROM, "Body": "Your payment failed"},
        auth=(ACCOUNT, TOKEN),
    )
    assert resp.status_code == 201
    msg = resp.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg["sid"])
    assert (msg["status"], msg["direction"], msg["num_segments"]) == ("queued", "outbound-api", "1")
    assert (msg["to"], msg["from"], msg["account_sid"]) == (TO, FROM, ACCOUNT)
    assert msg["api_version"] == "2010-04-01"
    assert msg["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{msg['sid']}.json"
    assert msg["date_created"].endswith("+0000")
    assert parsedate_to_datetime(msg["date_created"]).utcoffset() is not None
    assert msg["error_code"] is None and msg["price"] is None


def test_sdk_create_fetch_and_delivery(twilio_url: str) -> None:
    client = sdk(twilio_url)
    msg = client.messages.create(to="+34 612 34 56 78", from_=FROM, body="Hola")
    assert msg.to == TO  # Twilio keeps numbers in E.164
    assert msg.date_created is not None and msg.date_created.tzinfo is not None
    delivered = eventually_sync(
        lambda: client.messages(msg.sid).fetch(),
        lambda m: m.status == "delivered",
        what="message delivered",
    )
    assert delivered.date_sent is not None


def test_unicode_body_counts_ucs2_segments(twilio_url: str) -> None:
    msg = sdk(twilio_url).messages.create(to=TO, from_=FROM, body="Pago pendiente 🙏 " * 5)
    assert msg.num_segments == "2"  # 90 UTF-16 units: more than 70, at most 2 × 67


def test_list_filters_and_pages_newest_first(twilio_url: str) -> None:
    client = sdk(twilio_url)
    for n in range(5):
        client.messages.create(to=TO, from_=FROM, body=f"m{n}")
    client.messages.create(to="+12025550123", from_=FROM, body="other")
    listed = client.messages.list(to=TO, page_size=2)
    assert [m.body for m in listed] == ["m4", "m3", "m2", "m1", "m0"]
    assert len(client.messages.list(from_=FROM)) == 6

    page = httpx.get(
        twilio_url + MESSAGES, params={"To": TO, "PageSize": 2, "Page": 1}, auth=(ACCOUNT, TOKEN)
    ).json()
    assert [m["body"] for m in page["messages"]] == ["m2", "m1"]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (1, 2, 2, 3)
    assert "Page=2" in page["next_page_uri"] and "Page=0" in page["previous_page_uri"]
    assert page["first_page_uri"].startswith(MESSAGES)


def test_wrong_auth_token_is_20003(twilio_url: str) -> None:
    with pytest.raises(TwilioRestException) as exc:
        sdk(twilio_url, token="0" * 32).messages.create(to=TO, from_=FROM, body="x")
    assert (exc.value.status, exc.value.code) == (401, 20003)
    resp = httpx.get(twilio_url + MESSAGES, auth=(ACCOUNT, "wrong"))
    assert resp.status_code == 401
    assert set(resp.json()) == {"code", "message", "more_info", "status"}
    assert resp.json()["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert resp.headers["www-authenticate"].startswith("Basic")
    assert sent(twilio_url) == []


def test_unknown_message_is_20404(twilio_url: str) -> None:
    with pytest.raises(TwilioRestException) as exc:
        sdk(twilio_url).messages("SM" + "0" * 32).fetch()
    assert (exc.value.status, exc.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"to": "12345", "from_": FROM, "body": "x"}, 21211),
        ({"to": "+1555", "from_": FROM, "body": "x"}, 21211),
        ({"to": TO, "from_": FROM, "body": ""}, 21602),
        ({"to": TO, "from_": FROM, "body": "x" * 1601}, 21617),
        ({"to": TO, "body": "x"}, 21603),
        ({"to": TO, "from_": "+1", "body": "x"}, 21606),
        ({"to": TO, "from_": "+12025550123", "body": "x"}, 21659),
        ({"to": TO, "messaging_service_sid": "MG" + "0" * 32, "body": "x"}, 21701),
    ],
)
def test_invalid_requests_get_twilio_error_codes(
    twilio_url: str, params: dict[str, str], code: int
) -> None:
    with pytest.raises(TwilioRestException) as exc:
        sdk(twilio_url).messages.create(**params)
    assert (exc.value.status, exc.value.code) == (400, code)
    assert sent(twilio_url) == []


def test_messaging_service_message_is_accepted_then_gets_a_sender(twilio_url: str) -> None:
    client = sdk(twilio_url)
    msg = client.messages.create(to=TO, messaging_service_sid=SERVICE, body="x")
    assert (msg.status, msg.from_, msg.num_segments) == ("accepted", None, "0")
    done = eventually_sync(
        lambda: client.messages(msg.sid).fetch(), lambda m: m.status == "delivered"
    )
    assert (done.from_, done.num_segments, done.messaging_service_sid) == (FROM, "1", SERVICE)


def test_no_idempotency_key_the_same_request_twice_sends_twice(twilio_url: str) -> None:
    # Twilio's Messages API has no idempotency key; a header claiming one changes nothing.
    form = {"To": TO, "From": FROM, "Body": "once?"}
    headers = {"Idempotency-Key": "k1", "I-Twilio-Idempotency-Token": "k1"}
    for _ in range(2):
        resp = httpx.post(twilio_url + MESSAGES, data=form, headers=headers, auth=(ACCOUNT, TOKEN))
        assert resp.status_code == 201
    assert len(sent(twilio_url)) == 2


@pytest.mark.parametrize(("mode", "status", "code"), [("429", 429, 20429), ("500", 500, 20500)])
def test_faults_refuse_the_next_creates(twilio_url: str, mode: str, status: int, code: int) -> None:
    control(twilio_url, "POST", "/faults", json={"mode": mode, "count": 2, "to_contains": "+34"})
    client = sdk(twilio_url)
    client.messages.create(to="+12025550123", from_=FROM, body="other number: not faulted")
    for _ in range(2):
        with pytest.raises(TwilioRestException) as exc:
            client.messages.create(to=TO, from_=FROM, body="x")
        assert (exc.value.status, exc.value.code) == (status, code)
    client.messages.create(to=TO, from_=FROM, body="third goes through")
    assert [m["body"] for m in sent(twilio_url)] == [
        "other number: not faulted",
        "third goes through",
    ]
    assert control(twilio_url, "GET", "/faults")["faults"] == []


def test_delete_faults_clears_pending_faults(twilio_url: str) -> None:
    control(twilio_url, "POST", "/faults", json={"mode": "500", "count": 5})
    assert len(control(twilio_url, "GET", "/faults")["faults"]) == 1
    control(twilio_url, "DELETE", "/faults")
    assert sdk(twilio_url).messages.create(to=TO, from_=FROM, body="x").status == "queued"


def test_hang_sends_but_answers_too_late(twilio_url: str) -> None:
    control(twilio_url, "POST", "/faults", json={"mode": "hang", "seconds": 3})
    with pytest.raises(requests.exceptions.Timeout):
        sdk(twilio_url, timeout=0.5).messages.create(to=TO, from_=FROM, body="late")
    assert [m["body"] for m in sent(twilio_url)] == ["late"]


def test_delay_drops_the_request_when_the_client_gave_up(twilio_url: str) -> None:
    control(twilio_url, "POST", "/faults", json={"mode": "delay", "seconds": 1.5})
    with pytest.raises(requests.exceptions.Timeout):
        sdk(twilio_url, timeout=0.3).messages.create(to=TO, from_=FROM, body="dropped")
    eventually_sync(
        lambda: control(twilio_url, "GET", "/attempts")["attempts"],
        lambda attempts: any(a["status"] == 499 for a in attempts),
        within=10,
        what="the delayed request noticed its client left",
    )
    assert sent(twilio_url) == []
