"""Payment-page links: signed, rotated, refused when tampered with, unknown or expired."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from models.pay_links import (
    FEEDBACK_DAYS,
    InvalidLink,
    LinkConfigError,
    link_expiry,
    make_token,
    pay_url,
    verify,
)
from models.settings import Settings


def settings(secret: str = "k1:first-secret", url: str = "https://pay.example.com/") -> Settings:
    return Settings(
        dunning_link_secret=secret,
        dunning_public_url=url,
        _env_file=None,  # type: ignore[call-arg]
    )


def later(days: int = 1) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def test_a_signed_token_names_its_invoice_and_nothing_else() -> None:
    token = make_token(settings(), "in_123", later())
    assert verify(settings(), token) == "in_123"
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert set(payload) == {"i", "e", "k"}
    assert payload["k"] == "k1"
    # URL-safe and compact: no padding, nothing to escape in a path.
    assert all(ch.isalnum() or ch in "-_." for ch in token)
    assert len(token) < 120


def test_pay_url_joins_the_public_url_and_is_none_without_configuration() -> None:
    url = pay_url(settings(), "in_1", later())
    assert url is not None and url.startswith("https://pay.example.com/pay/")
    assert verify(settings(), url.rsplit("/", 1)[1]) == "in_1"
    assert pay_url(settings(secret=""), "in_1", later()) is None
    assert pay_url(settings(url=""), "in_1", later()) is None


def test_rotation_the_first_key_signs_and_every_key_verifies() -> None:
    old = make_token(settings("old:s-old"), "in_r", later())
    rotated = settings("new:s-new,old:s-old")
    assert verify(rotated, old) == "in_r"
    fresh = make_token(rotated, "in_r", later())
    assert json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "=="))["k"] == "new"
    # Once the old key is removed, its links are refused as signed by an unknown key.
    with pytest.raises(InvalidLink) as refused:
        verify(settings("new:s-new"), old)
    assert refused.value.problem == "unknown_key"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: _with_payload(t, {"i": "in_other"}),  # another invoice, same signature
        lambda t: _with_payload(t, {"e": 4102444800}),  # a later expiry, same signature
    ],
)
def test_a_tampered_token_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    token = make_token(settings(), "in_t", later())
    with pytest.raises(InvalidLink) as refused:
        verify(settings(), mangle(token))
    assert refused.value.problem == "tampered"


def _with_payload(token: str, change: dict[str, object]) -> str:
    payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    raw = json.dumps({**body, **change}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


@pytest.mark.parametrize("token", ["", "abc", "a.b", "!!!.???", "e30.AAAA", "x" * 700])
def test_garbage_is_malformed_or_unknown_never_an_exception_of_another_kind(token: str) -> None:
    with pytest.raises(InvalidLink) as refused:
        verify(settings(), token)
    assert refused.value.problem in ("malformed", "unknown_key")


def test_an_expired_token_is_refused() -> None:
    expires = datetime.now(UTC) + timedelta(seconds=60)
    token = make_token(settings(), "in_e", expires)
    assert verify(settings(), token, now=time.time()) == "in_e"
    with pytest.raises(InvalidLink) as refused:
        verify(settings(), token, now=expires.timestamp())
    assert refused.value.problem == "expired"


def test_links_outlive_the_case_by_the_feedback_window() -> None:
    deadline = datetime(2026, 3, 1, tzinfo=UTC)
    assert link_expiry(deadline) == deadline + timedelta(days=FEEDBACK_DAYS)


@pytest.mark.parametrize("secret", ["nokid", ":secret", "kid:", "a:b,broken"])
def test_a_malformed_secret_setting_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(LinkConfigError, match="kid:secret"):
        make_token(settings(secret), "in_x", later())
