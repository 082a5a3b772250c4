"""Who may use the support console: stateless signed sessions and per-page CSRF tokens.

The session cookie is an issue time signed with a key derived from DUNNING_SUPPORT_TOKEN; a
page's CSRF token is a random nonce and its HMAC with that cookie. The nonce is also the
request id of the page's action forms (see starter/support/console.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, quote

from fastapi import Depends, HTTPException, Request

SESSION_COOKIE = "dunning_console"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class ConsoleAuth:
    key: bytes
    open: bool  # dev mode without a token: no login, CSRF still checked

    def sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def unsigned(self, purpose: str, raw: str) -> str | None:
        value, _, signature = raw.rpartition(".")
        ok = value and hmac.compare_digest(signature.encode(), self.sign(purpose, value).encode())
        return value if ok else None


def auth_of(request: Request) -> ConsoleAuth:
    # Set by install_console; a router included without it fails every request (closed).
    return cast(ConsoleAuth, request.app.state.console)


def session_of(request: Request) -> str | None:
    """The valid session cookie's value, "open" in open dev mode, else None."""
    auth = auth_of(request)
    if auth.open:
        return "open"
    raw = request.cookies.get(SESSION_COOKIE, "")
    issued = auth.unsigned("session", raw) or ""
    fresh = issued.isdigit() and -60 < time.time() - int(issued) < SESSION_SECONDS
    return raw if fresh else None


def signed_in(request: Request) -> None:
    """Dependency of every page but the login page: without a session, go and log in."""
    if session_of(request) is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # a form post cannot be replayed through a redirect
            target = "/support"
        raise HTTPException(303, headers={"Location": f"/support/login?next={quote(target)}"})


GATE = [Depends(signed_in)]


def safe_next(value: str) -> str:
    # Only our own pages: an absolute or protocol-relative URL would be an open redirect.
    ours = value.startswith("/support") and "//" not in value and "\\" not in value
    return value if ours else "/support"


def csrf_token(auth: ConsoleAuth, session: str, nonce: str) -> str:
    return f"{nonce}.{auth.sign('csrf', f'{session}:{nonce}')}"


def cookie_options(request: Request) -> dict[str, Any]:
    secure = request.url.scheme == "https"
    return {"path": "/support", "httponly": True, "samesite": "strict", "secure": secure}


async def checked_form(request: Request) -> dict[str, str] | None:
    """The url-encoded form if its CSRF token matches the session, else None."""
    # Parsed here, not by FastAPI's Form(): the console needs no python-multipart.
    body = await request.body()
    form = dict(parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), True))
    session, given = session_of(request), form.get("csrf", "")
    nonce = given.partition(".")[0]
    expected = csrf_token(auth_of(request), session, nonce) if session and nonce else ""
    ok = expected and hmac.compare_digest(given.encode(), expected.encode())
    return form if ok else None


def request_key(form: dict[str, str]) -> str:
    """The request id of a checked form: its page's nonce (see the module's docstring)."""
    return form["csrf"].partition(".")[0]
