"""Moves outbound messages through their statuses and sends signed webhooks, on one thread.

One worker keeps every webhook in the order Twilio would send it (a message's `queued` before
its `sent`, a STOP before the reply that follows it), and API responses never wait on it.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import httpx

from .config import TwilioStandinConfig
from .segments import count_segments
from .signature import sign
from .state import API_VERSION, Store, rfc2822_now

Job = tuple[str, Any]


def status_params(resource: dict[str, Any], account_sid: str) -> dict[str, str]:
    """The form Twilio posts to a message's StatusCallback on each status change."""
    params = {
        "MessageSid": resource["sid"],
        "SmsSid": resource["sid"],
        "MessageStatus": resource["status"],
        "SmsStatus": resource["status"],
        "AccountSid": account_sid,
        "From": resource["from"] or "",
        "To": resource["to"],
        "ApiVersion": API_VERSION,
    }
    if resource.get("messaging_service_sid"):
        params["MessagingServiceSid"] = resource["messaging_service_sid"]
    if resource.get("error_code") is not None:
        # Only failed and undelivered callbacks carry ErrorCode.
        params["ErrorCode"] = str(resource["error_code"])
    return params


class Deliverer:
    def __init__(self, store: Store, config: TwilioStandinConfig) -> None:
        self.store = store
        self.config = config
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def outbound(self, sid: str) -> None:
        self._put(("outbound", sid))

    def webhook(self, kind: str, url: str, params: dict[str, str], sid: str) -> None:
        self._put(("webhook", (kind, url, params, sid)))

    def _put(self, job: Job) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="twilio-standin-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put(job)

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while (job := self._queue.get()) is not None:
                kind, payload = job
                if kind == "outbound":
                    self._progress(client, payload)
                else:
                    self._post(client, *payload)

    def _progress(self, client: httpx.Client, sid: str) -> None:
        with self.store.lock:
            stored = self.store.messages.get(sid)
            if stored is None:  # reset meanwhile
                return
            callback = stored.status_callback
            resource = stored.resource
            failure = self.store.failing.get(resource["to"])
        if callback:
            params = status_params(resource, self.config.account_sid)
            self._post(client, "status", callback, params, sid)
        steps: list[dict[str, Any]] = []
        if resource["status"] == "accepted":
            # A Messaging Service message is accepted first; it is queued once a sender from
            # the service's pool is chosen, and only then has a From and a segment count.
            segments = str(count_segments(resource["body"] or ""))
            steps.append(
                {"status": "queued", "from": self.config.numbers[0], "num_segments": segments}
            )
        if failure is None or failure.status == "undelivered":
            steps.append({"status": "sent", "date_sent": rfc2822_now()})
        if failure is None:
            steps.append({"status": "delivered"})
        else:
            steps.append(
                {
                    "status": failure.status,
                    "error_code": failure.error_code,
                    "error_message": f"Delivery failed ({failure.error_code})",
                }
            )
        for changes in steps:
            if self.config.status_step_seconds:
                time.sleep(self.config.status_step_seconds)
            with self.store.lock:
                if sid not in self.store.messages:
                    return
                resource = self.store.update(sid, **changes)
            if callback:
                params = status_params(resource, self.config.account_sid)
                self._post(client, "status", callback, params, sid)

    def _post(
        self, client: httpx.Client, kind: str, url: str, params: dict[str, str], sid: str
    ) -> None:
        signature = sign(url, params, self.config.auth_token)
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "User-Agent": "TwilioProxy/1.1",
        }
        status: int | None = None
        error: str | None = None
        try:
            status = client.post(url, data=params, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        # Twilio does not retry a status callback or an incoming-message webhook by default
        # (retries are an opt-in connection override), so one attempt is the whole delivery.
        self.store.log_delivery(
            {
                "kind": kind,
                "message_sid": sid,
                "url": url,
                "params": params,
                "signature": signature,
                "status_code": status,
                "error": error,
            }
        )
