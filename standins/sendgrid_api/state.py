"""In-memory state of the SendGrid stand-in: accepted messages, request log, injected faults."""

from __future__ import annotations

import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_message_id() -> str:
    # Real X-Message-Id values are 22-character URL-safe tokens.
    return secrets.token_urlsafe(16)[:22]


@dataclass
class RecordedMessage:
    message_id: str
    personalization_index: int
    received_at: str
    from_email: str
    from_name: str | None
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str | None
    text: str | None
    html: str | None
    custom_args: dict[str, str]
    categories: list[str]
    headers: dict[str, str]
    reply_to: str | None
    template_id: str | None
    send_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fault:
    id: int
    status: int
    remaining: int
    to_contains: str | None = None
    delay_seconds: float = 0.0
    # "hang": accept first, answer after the delay. "delay": wait first, then accept only if
    # the client is still there (see app.py).
    mode: str = "hang"
    # "mail_send" (POST /v3/mail/send) or "messages" (the Email Activity API).
    endpoint: str = "mail_send"

    def matches(self, recipients: list[str], endpoint: str = "mail_send") -> bool:
        if self.remaining <= 0 or self.endpoint != endpoint:
            return False
        if self.to_contains is None:
            return True
        needle = self.to_contains.lower()
        return any(needle in r.lower() for r in recipients)


@dataclass
class FeedSettings:
    """How the stand-in's Email Activity API behaves (an add-on real accounts may lack)."""

    available: bool = True
    # Answer given when not available: 403 (key or account without Email Activity access)
    # or 404.
    unavailable_status: int = 403
    # SendGrid builds the feed from processed events: a message accepted this many seconds
    # ago is not listed yet.
    lag_seconds: float = 0.0


@dataclass
class Attempt:
    at: str
    status: int
    recipients: list[str]
    message_id: str | None = None
    fault_id: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _emails(entries: object) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [e["email"] for e in entries if isinstance(e, dict) and isinstance(e.get("email"), str)]


def recipients_of(body: object) -> list[str]:
    """Best-effort list of every to/cc/bcc address, even for bodies that fail validation."""
    if not isinstance(body, dict) or not isinstance(body.get("personalizations"), list):
        return []
    found: list[str] = []
    for pers in body["personalizations"]:
        if isinstance(pers, dict):
            for key in ("to", "cc", "bcc"):
                found += _emails(pers.get(key))
    return found


def _content_of(body: dict[str, Any], ctype: str) -> str | None:
    for block in body.get("content") or []:
        if isinstance(block, dict) and str(block.get("type", "")).lower() == ctype:
            value = block.get("value")
            return value if isinstance(value, str) else None
    return None


def messages_from_body(body: dict[str, Any], message_id: str) -> list[RecordedMessage]:
    """One record per personalization, since SendGrid sends one email per personalization.

    Personalization-level subject, headers and custom_args override the message-level ones
    (Mail Send reference, personalizations).
    """
    received = now_iso()
    sender = body.get("from") or {}
    reply_to = body.get("reply_to")
    records = []
    for idx, pers in enumerate(body["personalizations"]):
        records.append(
            RecordedMessage(
                message_id=message_id,
                personalization_index=idx,
                received_at=received,
                from_email=sender.get("email", ""),
                from_name=sender.get("name"),
                to=_emails(pers.get("to")),
                cc=_emails(pers.get("cc")),
                bcc=_emails(pers.get("bcc")),
                subject=pers.get("subject", body.get("subject")),
                text=_content_of(body, "text/plain"),
                html=_content_of(body, "text/html"),
                custom_args={**(body.get("custom_args") or {}), **(pers.get("custom_args") or {})},
                categories=list(body.get("categories") or []),
                headers={**(body.get("headers") or {}), **(pers.get("headers") or {})},
                reply_to=reply_to.get("email") if isinstance(reply_to, dict) else None,
                template_id=body.get("template_id"),
                send_at=pers.get("send_at", body.get("send_at")),
            )
        )
    return records


class Store:
    """Thread-safe: uvicorn serves from its own thread while tests read from theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[RecordedMessage] = []
        self._attempts: list[Attempt] = []
        self._faults: list[Fault] = []
        self._next_fault_id = 1
        self._queries: list[dict[str, Any]] = []
        self.feed = FeedSettings()

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._attempts.clear()
            self._faults.clear()
            self._queries.clear()
            self.feed = FeedSettings()

    def add_fault(
        self,
        status: int,
        count: int,
        to_contains: str | None,
        delay_seconds: float = 0.0,
        mode: str = "hang",
        endpoint: str = "mail_send",
    ) -> Fault:
        with self._lock:
            fault = Fault(
                self._next_fault_id, status, count, to_contains, delay_seconds, mode, endpoint
            )
            self._next_fault_id += 1
            self._faults.append(fault)
            return fault

    def take_fault(self, recipients: list[str], endpoint: str = "mail_send") -> Fault | None:
        """Consume one use of the oldest fault matching these recipients (or query)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(recipients, endpoint):
                    fault.remaining -= 1
                    return fault
            return None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults if f.remaining > 0]

    def record_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self._attempts.append(attempt)

    def record_messages(self, messages: list[RecordedMessage]) -> None:
        with self._lock:
            self._messages.extend(messages)

    def record_query(self, query: str | None, status: int, found: int = 0) -> None:
        with self._lock:
            entry = {"at": now_iso(), "query": query, "status": status, "found": found}
            self._queries.append(entry)

    def queries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(q) for q in self._queries]

    def recorded(self) -> list[RecordedMessage]:
        with self._lock:
            return list(self._messages)

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(a) for a in self._attempts]

    def messages(self, custom_args: dict[str, str] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            selected = list(self._messages)
        if custom_args:
            selected = [
                m
                for m in selected
                if all(m.custom_args.get(k) == v for k, v in custom_args.items())
            ]
        return [m.to_dict() for m in selected]
