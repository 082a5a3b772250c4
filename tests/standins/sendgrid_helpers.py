"""Helpers for the SendGrid stand-in tests: the SDK client, messages, faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail


def client(url: str, key: str = "SG.x") -> SendGridAPIClient:
    return SendGridAPIClient(api_key=key, host=url)


def mail(to: str = "customer@example.com", **custom_args: str) -> Mail:
    message = Mail(
        from_email="billing@example.com",
        to_emails=to,
        subject="Your payment failed",
        plain_text_content="Please update your card.",
        html_content="<p>Please update your card.</p>",
    )
    if custom_args:
        message.custom_arg = [CustomArg(k, v) for k, v in custom_args.items()]
    return message


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "customer@example.com"}]}],
        "from": {"email": "billing@example.com"},
        "subject": "hello",
        "content": [{"type": "text/plain", "value": "hi"}],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def messages(url: str, **params: Any) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url}/_standin/messages", params=params)
    resp.raise_for_status()
    return list(resp.json())


def attempts(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/_standin/attempts").json())


def inject(url: str, status: int = 202, count: int = 1, **extra: Any) -> None:
    spec: dict[str, Any] = {"status": status, "count": count, **extra}
    httpx.post(f"{url}/_standin/faults", json=spec).raise_for_status()


def feed(url: str, query: str, key: str = "SG.x", **params: Any) -> list[dict[str, Any]]:
    """`GET /v3/messages` through the SDK, as activities/email.py asks it."""
    response = client(url, key).client.messages.get(query_params={"query": query, **params})
    return list(response.to_dict["messages"])


def error_fields(exc: pytest.ExceptionInfo[Any]) -> list[str | None]:
    return [e["field"] for e in exc.value.to_dict["errors"]]
