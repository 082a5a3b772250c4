"""The stand-in's Event Webhook: signed batches of email events, posted off the request path.

Like SendGrid's Signed Event Webhook, each POST carries `X-Twilio-Email-Event-Webhook-Timestamp`
and `X-Twilio-Email-Event-Webhook-Signature`: ECDSA (P-256, SHA-256) of the timestamp followed
by the raw body, DER and base64. The key pair is the stand-in's own (generated at start unless
one is given); its public half, base64 DER as SendGrid's settings show it, is what the
receiver verifies with.

What happens to an accepted email depends on its recipient's local part (before any `+tag`):
`bounce` → processed, bounce; `dropped` → processed, dropped; `unsubscribe`, `spamreport`,
`open` → processed, delivered, then that event; anyone else → processed, delivered. A batch
that does not get a 2xx is posted again, signed anew, until `retry_seconds`.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .state import RecordedMessage, Store, now_iso

log = logging.getLogger("standins.sendgrid.events")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
AFTER_DELIVERY = frozenset({"unsubscribe", "spamreport", "open"})


@dataclass
class EventWebhookConfig:
    # Where the batches go; None posts nothing (they are still listed in /_standin/events).
    url: str | None = None
    # A PEM private key (PKCS#8) to sign with; None generates a P-256 key pair at start.
    private_key_pem: str | None = None
    # SendGrid batches events and posts them some seconds after the send.
    delay_seconds: float = 1.0
    retry_seconds: float = 60.0


def new_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    der = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode()


def local_part(email: str) -> str:
    return email.split("@", 1)[0].split("+", 1)[0].lower()


def events_for(message: RecordedMessage, email: str, index: int) -> list[dict[str, Any]]:
    """The events SendGrid would report for one recipient of an accepted message."""
    kind = local_part(email)
    sg_message_id = f"{message.message_id}.filter0001.{secrets.token_hex(4)}.{index}"
    # Event Webhook reference: custom args come back as top-level fields of every event.
    base: dict[str, Any] = {**message.custom_args, "email": email}
    base["sg_message_id"] = sg_message_id
    if message.categories:
        base["category"] = list(message.categories)
    out = [event(base, "processed")]
    if kind == "dropped":
        out.append(event(base, "dropped", reason="Bounced Address"))
        return out
    if kind == "bounce":
        out.append(event(base, "bounce", reason=BOUNCE_REASON, status="5.1.1", type="bounce"))
        return out
    out.append(event(base, "delivered", response="250 OK"))
    if kind in AFTER_DELIVERY:
        out.append(event(base, kind))
    return out


def event(base: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    # sg_event_id: unique per event, base64url (Event Webhook troubleshooting, duplicates).
    sg_event_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    return {
        **base,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": sg_event_id,
        **extra,
    }


class EventPoster:
    """One thread posts every batch in order; the Mail Send answer never waits on it."""

    def __init__(self, config: EventWebhookConfig) -> None:
        self.config = config
        pem = config.private_key_pem or new_private_key_pem()
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the Event Webhook signing key must be an elliptic-curve key")
        self.private_key = key
        self.public_key = base64.b64encode(
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()
        self._queue: queue.Queue[tuple[float, list[dict[str, Any]]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._posts: list[dict[str, Any]] = []

    def accepted(self, messages: list[RecordedMessage]) -> None:
        batch = [
            evt
            for message in messages
            for index, email in enumerate(message.to + message.cc + message.bcc)
            for evt in events_for(message, email, index)
        ]
        self.post_later(batch)

    def post_later(self, batch: list[dict[str, Any]], delay: float | None = None) -> None:
        wait = self.config.delay_seconds if delay is None else delay
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sendgrid-standin-events", daemon=True
                )
                self._thread.start()
        self._queue.put((time.monotonic() + wait, batch))

    def posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self._posts]

    def reset(self) -> None:
        with self._lock:
            self._posts.clear()

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while (job := self._queue.get()) is not None:
                due, batch = job
                time.sleep(max(0.0, due - time.monotonic()))
                self._deliver(client, batch)

    def _deliver(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        url = self.config.url
        entry: dict[str, Any] = {"at": now_iso(), "url": url, "events": batch, "attempts": []}
        with self._lock:
            self._posts.append(entry)
        if not url:
            return
        body = json.dumps(batch).encode()
        deadline, pause = time.monotonic() + self.config.retry_seconds, 0.5
        while True:
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "SendGrid Event API",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.private_key, timestamp, body),
            }
            try:
                status: int | str = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                status = f"{type(exc).__name__}: {exc}"
            with self._lock:
                entry["attempts"].append({"at": now_iso(), "status": status})
            if isinstance(status, int) and 200 <= status < 300:
                return
            if time.monotonic() + pause > deadline:
                log.warning("Event batch to %s not accepted (%s); dropped", url, status)
                return
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


class EventWebhookIn(BaseModel):
    """Where the Event Webhook posts; fields left out keep their current value."""

    url: str | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=120)


class EventIn(BaseModel):
    """One event of a recorded message's recipient, posted now (an open, a click, a
    group_resubscribe...); extra fields (reason, url, asm_group_id) go into the event."""

    model_config = ConfigDict(extra="allow")

    email: str
    event: str
    message_id: str | None = None


def install_event_routes(app: FastAPI, store: Store, poster: EventPoster) -> None:
    @app.get("/_standin/event_webhook")
    def get_event_webhook() -> dict[str, Any]:
        config = poster.config
        return {
            "url": config.url,
            "public_key": poster.public_key,
            "delay_seconds": config.delay_seconds,
        }

    @app.post("/_standin/event_webhook")
    def set_event_webhook(spec: EventWebhookIn) -> dict[str, Any]:
        if "url" in spec.model_fields_set:
            poster.config.url = spec.url
        if spec.delay_seconds is not None:
            poster.config.delay_seconds = spec.delay_seconds
        return get_event_webhook()

    @app.get("/_standin/events")
    def list_posts() -> list[dict[str, Any]]:
        return poster.posts()

    @app.post("/_standin/events", status_code=202)
    def post_event(spec: EventIn) -> dict[str, Any]:
        sent = [
            m
            for m in store.recorded()
            if spec.email.lower() in (a.lower() for a in m.to + m.cc + m.bcc)
            and spec.message_id in (None, m.message_id)
        ]
        if not sent:
            raise HTTPException(404, f"no recorded message to {spec.email}")
        message = sent[-1]
        base = {**message.custom_args, "email": spec.email}
        base["sg_message_id"] = f"{message.message_id}.filter0001.{secrets.token_hex(4)}.0"
        evt = event(base, spec.event, **(spec.model_extra or {}))
        poster.post_later([evt], delay=0.0)
        return evt
