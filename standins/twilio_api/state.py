"""In-memory state of the Twilio stand-in: messages, opt-outs, faults, logs.

Thread-safe: uvicorn serves from its own thread, the delivery worker moves messages along on
another, and tests read from theirs.
"""

from __future__ import annotations

import copy
import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"


def new_sid(prefix: str) -> str:
    # Twilio SIDs: a two-letter type prefix and 32 hex digits (SM… for SMS messages).
    return prefix + secrets.token_hex(16)


def rfc2822_now() -> str:
    # Resource dates are RFC 2822 in GMT, e.g. "Fri, 13 Aug 2010 01:16:24 +0000".
    return format_datetime(datetime.now(UTC))


@dataclass
class Fault:
    id: int
    # "429" / "500": refused before any message exists. "hang": the message is created and
    # the answer is late (a client timeout that did send). "delay": the request waits, then
    # is dropped if the client went away, else executes (a slow Twilio).
    mode: str
    remaining: int
    to_contains: str | None = None
    seconds: float = 0.0

    def matches(self, to: str) -> bool:
        return self.remaining > 0 and (self.to_contains is None or self.to_contains in to)


@dataclass
class DeliveryFailure:
    # "undelivered" (the carrier refused it) or "failed" (Twilio could not send it at all),
    # with a 30xxx error code such as 30003 unreachable handset or 30006 landline.
    status: str
    error_code: int


@dataclass
class Stored:
    resource: dict[str, Any]
    status_callback: str | None = None


@dataclass
class Store:
    lock: threading.RLock = field(default_factory=threading.RLock)
    messages: dict[str, Stored] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    failing: dict[str, DeliveryFailure] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    next_fault_id: int = 1

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.opted_out.clear()
            self.failing.clear()
            self.faults.clear()
            self.attempts.clear()
            self.deliveries.clear()

    def add_fault(self, mode: str, count: int, to_contains: str | None, seconds: float) -> Fault:
        with self.lock:
            fault = Fault(self.next_fault_id, mode, count, to_contains, seconds)
            self.next_fault_id += 1
            self.faults.append(fault)
            return fault

    def take_fault(self, to: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(to):
                    fault.remaining -= 1
                    return fault
            return None

    def pending_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(f) for f in self.faults if f.remaining > 0]

    def put(self, resource: dict[str, Any], status_callback: str | None = None) -> None:
        with self.lock:
            self.messages[resource["sid"]] = Stored(copy.deepcopy(resource), status_callback)

    def get(self, sid: str) -> dict[str, Any] | None:
        with self.lock:
            stored = self.messages.get(sid)
            return copy.deepcopy(stored.resource) if stored else None

    def update(self, sid: str, **changes: Any) -> dict[str, Any]:
        with self.lock:
            resource = self.messages[sid].resource
            resource.update(changes, date_updated=rfc2822_now())
            return copy.deepcopy(resource)

    def newest_first(self) -> list[dict[str, Any]]:
        # The list endpoint returns the most recent messages first.
        with self.lock:
            return [copy.deepcopy(s.resource) for s in reversed(self.messages.values())]

    def log_attempt(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.attempts.append(entry)

    def log_delivery(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.deliveries.append(entry)
