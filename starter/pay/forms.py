"""The payment page's forms: signed per-render nonces (CSRF) and the one-time result cookie.

There is no login: the signed link is the customer's key. A form is accepted only with the
nonce its page rendered, signed (HMAC with DUNNING_LINK_SECRET's keys) together with the link's
token, so another site can neither forge one nor replay one across links; browsers that say a
POST came from another site (`Sec-Fetch-Site: cross-site`) are refused too. The nonce is also
the action's request id: the same form posted twice (double click, back button) is one action.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response

from models.pay_links import signing_keys
from models.settings import Settings

MAX_FORM_BYTES = 16 * 1024
FLASH_COOKIE = "dunning_pay_flash"


def _sign(secret: bytes, purpose: str, token: str, value: str) -> str:
    return hmac.digest(secret, f"{purpose}:{token}:{value}".encode(), "sha256").hex()


def new_nonce(settings: Settings, token: str) -> str:
    nonce = secrets.token_hex(16)
    return f"{nonce}.{_sign(signing_keys(settings)[0][1], 'form', token, nonce)}"


def _valid(settings: Settings, purpose: str, token: str, value: str, signature: str) -> bool:
    return any(
        hmac.compare_digest(signature, _sign(secret, purpose, token, value))
        for _, secret in signing_keys(settings)
    )


async def checked_form(request: Request, settings: Settings, token: str) -> dict[str, str] | None:
    """The url-encoded form if it carries a nonce this link's page rendered, else None."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return None
    body = (await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    nonce, _, signature = form.get("nonce", "").partition(".")
    if not nonce or not _valid(settings, "form", token, nonce, signature):
        return None
    form["request_id"] = nonce
    return form


def set_flash(
    response: Response, settings: Settings, token: str, secure: bool, **flash: Any
) -> None:
    """What the page shows once after an action's redirect (done, or refused and why)."""
    encoded = base64.urlsafe_b64encode(json.dumps(flash).encode()).decode()
    value = f"{encoded}.{_sign(signing_keys(settings)[0][1], 'flash', token, encoded)}"
    response.set_cookie(
        FLASH_COOKIE, value, 120, path=f"/pay/{token}", httponly=True, samesite="strict",
        secure=secure,
    )  # fmt: skip


def take_flash(request: Request, settings: Settings, token: str) -> dict[str, Any]:
    encoded, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not encoded or not _valid(settings, "flash", token, encoded, signature):
        return {}
    value = json.loads(base64.urlsafe_b64decode(encoded))
    return value if isinstance(value, dict) else {}


def clear_flash(response: Response, token: str) -> None:
    response.delete_cookie(FLASH_COOKIE, path=f"/pay/{token}")
