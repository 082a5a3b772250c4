"""Event creation and signed webhook delivery (https://docs.stripe.com/webhooks).

Deliveries run on a background thread so the API response never waits on the endpoint.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import queue
import threading
import time
from typing import Any

import httpx

from .config import StripeStandinConfig
from .state import Store, new_id, now


def sign(payload: str, secret: str, timestamp: int) -> str:
    # Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed by whsec_...>
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Emitter:
    def __init__(self, store: Store, config: StripeStandinConfig) -> None:
        self.store = store
        self.config = config
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def configure(self, url: str | None, secret: str | None) -> None:
        with self.store.lock:
            self.config.webhook_url = url
            self.config.webhook_secret = secret

    def emit(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        previous_attributes: dict[str, Any] | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        with self.store.lock:
            target = self.config.webhook_url
            data: dict[str, Any] = {"object": copy.deepcopy(obj)}
            if previous_attributes is not None:
                data["previous_attributes"] = copy.deepcopy(previous_attributes)
            event = {
                "id": new_id("evt"),
                "object": "event",
                "api_version": self.config.api_version,
                "created": now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1 if target else 0,
                # Automatic actions (e.g. Stripe's own retries) carry null request fields.
                "request": {"id": request_id, "idempotency_key": idempotency_key},
                "type": type_,
            }
            self.store.events.append(event)
        if target:
            self._ensure_worker()
            self._queue.put(event)
        return event

    def _ensure_worker(self) -> None:
        with self.store.lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="stripe-standin-webhooks", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while True:
                event = self._queue.get()
                if event is None:
                    return
                self._deliver(client, event)

    def _deliver(self, client: httpx.Client, event: dict[str, Any]) -> None:
        with self.store.lock:
            url, secret = self.config.webhook_url, self.config.webhook_secret
            attempts = max(1, self.config.webhook_attempts)
            backoff = self.config.webhook_backoff_seconds
        if not url:
            return
        payload = json.dumps(event, indent=2)
        for attempt in range(1, attempts + 1):
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            if secret:
                headers["Stripe-Signature"] = sign(payload, secret, now())
            status: int | None = None
            error: str | None = None
            try:
                status = client.post(url, content=payload, headers=headers).status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            ok = status is not None and 200 <= status < 300
            with self.store.lock:
                self.store.deliveries.append(
                    {
                        "event": event["id"],
                        "type": event["type"],
                        "url": url,
                        "attempt": attempt,
                        "status_code": status,
                        "error": error,
                        "succeeded": ok,
                    }
                )
                if ok:
                    event["pending_webhooks"] = 0
            if ok:
                return
            if attempt < attempts:
                time.sleep(backoff * (2 ** (attempt - 1)))
