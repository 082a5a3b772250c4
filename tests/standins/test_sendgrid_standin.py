"""The SendGrid stand-in (Mail Send and the Email Activity API), driven through the real SDK."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    ForbiddenError,
    HTTPError,
    InternalServerError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)

from standins.sendgrid_api import create_app, validate_mail_send
from standins.server import BackgroundServer
from tests.standins.sendgrid_helpers import (
    attempts,
    body,
    client,
    error_fields,
    inject,
    mail,
    messages,
)


def test_valid_send_is_accepted_and_recorded(url: str) -> None:
    resp = client(url).send(mail(invoice_id="in_123", workflow="wf-1"))
    assert resp.status_code == 202
    assert resp.body in (b"", "")
    message_id = resp.headers["X-Message-Id"]
    assert message_id

    [msg] = messages(url)
    assert msg["message_id"] == message_id
    assert msg["from_email"] == "billing@example.com"
    assert msg["to"] == ["customer@example.com"]
    assert msg["subject"] == "Your payment failed"
    assert msg["text"] == "Please update your card."
    assert msg["html"] == "<p>Please update your card.</p>"
    assert msg["custom_args"] == {"invoice_id": "in_123", "workflow": "wf-1"}
    assert msg["received_at"]
    assert attempts(url)[-1]["status"] == 202


def test_messages_filter_by_custom_arg(url: str) -> None:
    sg = client(url)
    sg.send(mail(invoice_id="in_1"))
    sg.send(mail(invoice_id="in_2"))
    assert [m["custom_args"]["invoice_id"] for m in messages(url)] == ["in_1", "in_2"]
    assert len(messages(url, custom_arg="invoice_id:in_2")) == 1
    assert messages(url, custom_arg="invoice_id:nope") == []


def test_personalization_overrides_subject_and_custom_args(url: str) -> None:
    payload = body(
        custom_args={"a": "top", "b": "top"},
        personalizations=[
            {"to": [{"email": "x@example.com"}], "subject": "per", "custom_args": {"b": "p"}}
        ],
    )
    assert client(url).send(payload).status_code == 202
    [msg] = messages(url)
    assert msg["subject"] == "per"
    assert msg["custom_args"] == {"a": "top", "b": "p"}


def test_invalid_recipient_address_is_400_with_field(url: str) -> None:
    payload = body(personalizations=[{"to": [{"email": "not-an-address"}]}])
    with pytest.raises(BadRequestsError) as exc:
        client(url).send(payload)
    assert exc.value.status_code == 400
    [err] = exc.value.to_dict["errors"]
    assert err["field"] == "personalizations.0.to.0.email"
    assert err["message"] == "Does not contain a valid address."
    assert err["help"].startswith("http://sendgrid.com/docs/")
    assert messages(url) == []
    assert attempts(url)[-1]["status"] == 400


def test_missing_subject_and_content_list_every_error(url: str) -> None:
    with pytest.raises(BadRequestsError) as exc:
        client(url).send(body(subject=None, content=None))
    assert set(error_fields(exc)) == {"subject", "content"}


def test_subject_in_every_personalization_is_enough(url: str) -> None:
    payload = body(
        subject=None, personalizations=[{"to": [{"email": "a@example.com"}], "subject": "s"}]
    )
    assert client(url).send(payload).status_code == 202


def test_template_id_waives_subject_and_content(url: str) -> None:
    payload = body(subject=None, content=None, template_id="d-0123456789abcdef0123456789abcdef")
    assert client(url).send(payload).status_code == 202


def test_bad_auth_is_401(url: str) -> None:
    sg = client(url)
    sg.client.request_headers.pop("Authorization")
    with pytest.raises(UnauthorizedError) as exc:
        sg.send(mail())
    [err] = exc.value.to_dict["errors"]
    assert err == {
        "field": None,
        "message": "The provided authorization grant is invalid, expired, or revoked",
        "help": None,
    }
    assert messages(url) == []
    assert attempts(url)[-1]["status"] == 401


def test_configured_key_rejects_others() -> None:
    with BackgroundServer(create_app(api_key="SG.right")) as srv:
        assert client(srv.url, "SG.right").send(mail()).status_code == 202
        with pytest.raises(UnauthorizedError):
            client(srv.url, "SG.wrong").send(mail())


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (500, InternalServerError),
        (503, ServiceUnavailableError),
        (403, ForbiddenError),
        (401, UnauthorizedError),
    ],
)
def test_injected_faults_raise_sdk_errors(url: str, status: int, exc_type: type[HTTPError]) -> None:
    inject(url, status)
    with pytest.raises(exc_type) as exc:
        client(url).send(mail())
    assert exc.value.status_code == status
    assert exc.value.to_dict["errors"]
    assert messages(url) == []
    # The fault is consumed: the retry goes through.
    assert client(url).send(mail()).status_code == 202
    assert [a["status"] for a in attempts(url)] == [status, 202]


def test_injected_429_has_rate_limit_headers(url: str) -> None:
    inject(url, 429, count=2)
    sg = client(url)
    for _ in range(2):
        with pytest.raises(TooManyRequestsError) as exc:
            sg.send(mail())
        headers = exc.value.headers
        assert headers["X-RateLimit-Remaining"] == "0"
        assert int(headers["X-RateLimit-Reset"]) > 0
        assert int(headers["X-RateLimit-Limit"]) > 0
        assert exc.value.to_dict["errors"][0]["message"] == "too many requests"
    assert messages(url) == []
    assert sg.send(mail()).status_code == 202


def test_injected_400_targets_matching_recipient_only(url: str) -> None:
    inject(url, 400, count=5, to_contains="bounce")
    sg = client(url)
    assert sg.send(mail(to="fine@example.com")).status_code == 202
    with pytest.raises(BadRequestsError) as exc:
        sg.send(mail(to="will-bounce@example.com"))
    assert error_fields(exc) == ["personalizations.0.to.0.email"]
    assert [m["to"] for m in messages(url)] == [["fine@example.com"]]


def test_fault_endpoint_rejects_unknown_status(url: str) -> None:
    resp = httpx.post(f"{url}/_standin/faults", json={"status": 418, "count": 1})
    assert resp.status_code == 422


def test_reset_clears_everything(url: str) -> None:
    client(url).send(mail())
    inject(url, 500)
    httpx.post(f"{url}/_standin/reset").raise_for_status()
    assert messages(url) == [] and attempts(url) == []
    assert client(url).send(mail()).status_code == 202


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (body(personalizations=[]), ["personalizations"]),
        (body(personalizations=[{"to": []}]), ["personalizations.0.to"]),
        (body(personalizations=[{"cc": [{"email": "a@example.com"}]}]), ["personalizations.0.to"]),
        (body(**{"from": {"email": "nope"}}), ["from.email"]),
        (body(**{"from": None}), ["from"]),
        (body(reply_to={"email": "bad"}), ["reply_to.email"]),
        (body(content=[{"type": "text/plain", "value": ""}]), ["content.0.value"]),
        (
            body(
                content=[
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ]
            ),
            ["content"],
        ),
        (body(custom_args={"attempt": 3}), ["custom_args.attempt"]),
        (body(custom_args={"big": "x" * 10_001}), ["custom_args"]),
        (
            body(
                personalizations=[
                    {"to": [{"email": "a@example.com"}], "cc": [{"email": "A@example.com"}]}
                ]
            ),
            ["personalizations.0"],
        ),
        (
            body(personalizations=[{"to": [{"email": f"u{i}@example.com"}]} for i in range(1001)]),
            ["personalizations", "personalizations"],
        ),
    ],
)
def test_validation_rules(payload: dict[str, Any], fields: list[str]) -> None:
    assert [e["field"] for e in validate_mail_send(payload)] == fields


def test_valid_bodies_pass_validation() -> None:
    assert validate_mail_send(body()) == []
    both = [{"type": "text/plain", "value": "x"}, {"type": "text/html", "value": "<b>x</b>"}]
    assert validate_mail_send(body(content=both, reply_to={"email": "help@example.com"})) == []


def test_non_json_body_is_400(url: str) -> None:
    resp = httpx.post(
        f"{url}/v3/mail/send", content=b"{not json", headers={"Authorization": "Bearer SG.x"}
    )
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] is None


def test_delayed_acceptance_records_message_even_if_client_times_out(url: str) -> None:
    httpx.post(
        f"{url}/_standin/faults", json={"status": 202, "count": 1, "delay_seconds": 1.0}
    ).raise_for_status()
    sg = client(url)
    sg.client.timeout = 0.2
    with pytest.raises(TimeoutError):
        sg.send(mail(invoice_id="in_slow"))
    assert len(messages(url, custom_arg="invoice_id:in_slow")) == 1
