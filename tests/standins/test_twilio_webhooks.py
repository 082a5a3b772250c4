"""The Twilio stand-in's signed webhooks: status callbacks and customer texts (STOP/START).

Every signature is checked with the real SDK's `twilio.request_validator.RequestValidator`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from activities.twilio_client import make_twilio_client
from standins.twilio_api import sign
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
from tests.standins.conftest import HookReceiver

CUSTOMER = "+34612345678"
VALIDATOR = RequestValidator(TOKEN)


def control(url: str, method: str, path: str, **kwargs: Any) -> Any:
    resp = httpx.request(method, f"{url}/_standin{path}", timeout=10, **kwargs)
    resp.raise_for_status()
    return resp.json()


def statuses(hooks: HookReceiver, count: int) -> list[dict[str, Any]]:
    return eventually_sync(
        lambda: hooks.received("status"),
        lambda got: len(got) >= count,
        what=f"{count} status callbacks",
    )


def assert_signed(request: dict[str, Any]) -> None:
    signature = request["headers"]["x-twilio-signature"]
    assert VALIDATOR.validate(request["url"], request["params"], signature)


def test_signature_matches_the_sdk_validator() -> None:
    url = "https://example.com/twilio/status?case=in_1&step=2"
    params = {"MessageSid": "SM1", "To": "+34612345678", "Body": "¿Pagó? ✓", "AccountSid": "AC1"}
    signature = sign(url, params, TOKEN)
    assert signature == VALIDATOR.compute_signature(url, params)
    assert VALIDATOR.validate(url, params, signature)
    assert not VALIDATOR.validate(url, {**params, "Body": "changed"}, signature)
    assert not RequestValidator("another-token").validate(url, params, signature)


def test_status_callbacks_queued_sent_delivered_signed(
    twilio_url: str, hooks: HookReceiver
) -> None:
    callback = hooks.url("status?case=in_1")
    client = make_twilio_client(ACCOUNT, TOKEN, twilio_url, 10)
    msg = client.messages.create(to=CUSTOMER, from_=FROM, body="x", status_callback=callback)
    got = statuses(hooks, 3)
    assert [r["params"]["MessageStatus"] for r in got] == ["queued", "sent", "delivered"]
    for request in got:
        assert request["url"] == callback
        assert_signed(request)
        params = request["params"]
        assert (params["MessageSid"], params["SmsSid"]) == (msg.sid, msg.sid)
        assert (params["AccountSid"], params["From"], params["To"]) == (ACCOUNT, FROM, CUSTOMER)
        assert params["ApiVersion"] == "2010-04-01" and "ErrorCode" not in params
    tampered = {**got[-1], "params": {**got[-1]["params"], "MessageStatus": "failed"}}
    with pytest.raises(AssertionError):
        assert_signed(tampered)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        ("undelivered", 30003, ["queued", "sent", "undelivered"]),
        ("failed", 30008, ["queued", "failed"]),
    ],
)
def test_failing_number_reports_its_error_code(
    twilio_url: str, hooks: HookReceiver, status: str, code: int, expected: list[str]
) -> None:
    spec = {"number": CUSTOMER, "status": status, "error_code": code}
    control(twilio_url, "POST", "/failing_numbers", json=spec)
    client = make_twilio_client(ACCOUNT, TOKEN, twilio_url, 10)
    msg = client.messages.create(
        to=CUSTOMER, from_=FROM, body="x", status_callback=hooks.url("status")
    )
    got = statuses(hooks, len(expected))
    assert [r["params"]["MessageStatus"] for r in got] == expected
    assert got[-1]["params"]["ErrorCode"] == str(code)
    assert_signed(got[-1])
    fetched = client.messages(msg.sid).fetch()
    assert (fetched.status, fetched.error_code) == (status, code)


def test_messaging_service_callbacks_start_at_accepted(
    twilio_url: str, hooks: HookReceiver
) -> None:
    client = make_twilio_client(ACCOUNT, TOKEN, twilio_url, 10)
    client.messages.create(
        to=CUSTOMER, messaging_service_sid=SERVICE, body="x", status_callback=hooks.url("status")
    )
    got = statuses(hooks, 4)
    assert [r["params"]["MessageStatus"] for r in got] == [
        "accepted",
        "queued",
        "sent",
        "delivered",
    ]
    assert {r["params"]["MessagingServiceSid"] for r in got} == {SERVICE}
    assert got[-1]["params"]["From"] == FROM


def texts(twilio_url: str, body: str) -> dict[str, Any]:
    return dict(control(twilio_url, "POST", "/inbound", json={"from": CUSTOMER, "body": body}))


def test_stop_unsubscribes_and_start_resubscribes(twilio_url: str, hooks: HookReceiver) -> None:
    control(twilio_url, "POST", "/inbound_url", json={"url": hooks.url("inbound")})
    client = make_twilio_client(ACCOUNT, TOKEN, twilio_url, 10)
    try:
        stop = texts(twilio_url, " stop ")
        assert control(twilio_url, "GET", "/opt_outs")["opted_out"] == [CUSTOMER]
        with pytest.raises(TwilioRestException) as exc:
            client.messages.create(to=CUSTOMER, from_=FROM, body="still there?")
        assert (exc.value.status, exc.value.code) == (400, 21610)

        [hook] = eventually_sync(lambda: hooks.received("inbound"), what="inbound webhook")
        assert_signed(hook)
        params = hook["params"]
        assert params["MessageSid"] == stop["message"]["sid"]
        assert (params["From"], params["To"], params["Body"]) == (CUSTOMER, FROM, " stop ")
        assert (params["OptOutType"], params["NumSegments"], params["NumMedia"]) == (
            "STOP",
            "1",
            "0",
        )
        assert (params["AccountSid"], params["MessagingServiceSid"]) == (ACCOUNT, SERVICE)

        texts(twilio_url, "START")
        assert control(twilio_url, "GET", "/opt_outs")["opted_out"] == []
        assert (
            client.messages.create(to=CUSTOMER, from_=FROM, body="welcome back").status == "queued"
        )
        hooks_now = eventually_sync(lambda: hooks.received("inbound"), lambda got: len(got) == 2)
        assert hooks_now[1]["params"]["OptOutType"] == "START"
    finally:
        control(twilio_url, "POST", "/inbound_url", json={"url": None})


@pytest.mark.parametrize("body", ["UNSUBSCRIBE", "Cancel", "quit", "optout"])
def test_every_default_opt_out_keyword_blocks(twilio_url: str, body: str) -> None:
    assert texts(twilio_url, body)["params"]["OptOutType"] == "STOP"
    with pytest.raises(TwilioRestException) as exc:
        make_twilio_client(ACCOUNT, TOKEN, twilio_url, 10).messages.create(
            to=CUSTOMER, from_=FROM, body="x"
        )
    assert exc.value.code == 21610


def test_a_sentence_with_stop_in_it_is_not_a_keyword(twilio_url: str) -> None:
    reply = texts(twilio_url, "please stop texting me at night")
    assert "OptOutType" not in reply["params"]
    assert control(twilio_url, "GET", "/opt_outs")["opted_out"] == []
    assert reply["message"]["direction"] == "inbound" and reply["message"]["status"] == "received"


def test_help_is_reported_but_changes_nothing(twilio_url: str) -> None:
    assert texts(twilio_url, "HELP")["params"]["OptOutType"] == "HELP"
    assert control(twilio_url, "GET", "/opt_outs")["opted_out"] == []
