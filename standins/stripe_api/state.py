"""In-memory state of the stand-in. Every access goes through `Store.lock`."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"


def now() -> int:
    return int(time.time())


@dataclass
class Fault:
    mode: str
    remaining: int
    path_contains: str | None = None
    hang_seconds: float = 30.0


@dataclass
class IdempotencyRecord:
    method: str
    path: str
    params: dict[str, Any]
    request_id: str
    status: int | None = None
    body: dict[str, Any] | None = None

    @property
    def in_progress(self) -> bool:
        return self.status is None


@dataclass
class Store:
    lock: threading.RLock = field(default_factory=threading.RLock)
    # All API objects by id; the id prefix says the kind (cus_, pm_, sub_, in_, ii_, price_ ...).
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per-customer clones of the `pm_card_*` test tokens, so reuse of a token maps to one PM.
    token_clones: dict[tuple[str, str], str] = field(default_factory=dict)
    # Which test card each PaymentMethod id behaves like.
    pm_cards: dict[str, str] = field(default_factory=dict)
    charges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Stripe keeps one PaymentIntent per invoice across payment attempts.
    invoice_pis: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    invoice_sequence: int = 0

    def reset(self) -> None:
        with self.lock:
            self.objects.clear()
            self.token_clones.clear()
            self.pm_cards.clear()
            self.charges.clear()
            self.invoice_pis.clear()
            self.events.clear()
            self.deliveries.clear()
            self.requests.clear()
            self.idempotency.clear()
            self.faults.clear()
            self.invoice_sequence = 0

    def get(self, object_id: str, prefix: str) -> dict[str, Any] | None:
        if not object_id.startswith(prefix + "_"):
            return None
        return self.objects.get(object_id)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def take_fault(self, path: str) -> Fault | None:
        """Consume one matching fault, first come first served."""
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and (not fault.path_contains or fault.path_contains in path):
                    fault.remaining -= 1
                    return fault
            return None
