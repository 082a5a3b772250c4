"""A merchant's webhook endpoint for the tests: verifies each delivery with the
`standardwebhooks` package as a merchant would, answers 500 to the first `fail_next`
deliveries, and records the rest. (The signing itself is checked against the spec's own
example in tests/activities/test_merchant_webhooks.py.)"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from standins.server import BackgroundServer

SECRET = "whsec_" + base64.b64encode(b"merchant-test-secret-32-bytes!!!").decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a merchant's receiver does: the `standardwebhooks` package's own verification
    (a fresh timestamp, a v1 signature over id.timestamp.body)."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


class Receiver:
    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.fail_next = 0
        self.refused: list[str] = []  # webhook-ids answered 500
        self.accepted: list[dict[str, Any]] = []  # verified and taken, first time per id
        self.repeats: list[str] = []  # verified again under an id already taken

        async def receive(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            if not verify(self.secret, headers, body):
                return Response(status_code=400)
            with self.lock:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    self.refused.append(headers["webhook-id"])
                    return Response(status_code=500)
                if headers["webhook-id"] in {a["id"] for a in self.accepted}:
                    self.repeats.append(headers["webhook-id"])  # dedupe, as the spec asks
                else:
                    self.accepted.append({"id": headers["webhook-id"], **json.loads(body)})
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/hooks", receive, methods=["POST"])])

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.accepted)


@contextmanager
def merchant(fail_next: int = 0) -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    receiver.fail_next = fail_next
    with BackgroundServer(receiver.app) as server:
        yield receiver, f"{server.url}/hooks"
