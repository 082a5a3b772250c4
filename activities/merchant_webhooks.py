"""Webhook channel: signed case events to the merchant's endpoints (Standard Webhooks).

A helpdesk, CRM or chat hears what happens to a case: `dunning.case.opened`, `.step`,
`.recovered`, `.final_action` and `.needs_support`. The body is `{"type", "timestamp",
"data"}` with ids and codes only. The `webhook-id` is derived from the case and the event, so
a retry carries the same id and receivers drop a repeat; each endpoint's delivery is its own
ledger row (`…:webhook:{n}`), so a retry after one endpoint failed sends to that one only.
Any answer but 2xx, a timeout or an unreachable endpoint raises: Temporal retries with backoff.

`data.summary` says the same in one sentence for a person reading the event in a helpdesk or a
chat: ids, an amount and codes only, like the rest of the body. It comes from the messages
catalog, in English: there is no merchant-language setting, and the customer's language is
not the merchant team's.
"""

from __future__ import annotations

import gettext
import hashlib
import json
import time
from collections.abc import Callable, Sequence

import httpx
from temporalio import activity

from activities.failures import compact_failures
from activities.message_copy import N_
from activities.webhook_signing import headers
from models.activities import CaseEvent, NotificationInput, NotificationResult, channel_key
from models.i18n import DEFAULT_LOCALE, format_money, translations
from models.notification_store import NotificationStore

MERCHANT_LANGUAGE = DEFAULT_LOCALE

_SUMMARIES: dict[CaseEvent, str] = {
    "dunning.case.opened": N_(
        "Payment of %(amount)s failed for invoice %(invoice_id)s; dunning case opened."
    ),
    "dunning.case.step": N_(
        "Step %(step)s of the dunning case for invoice %(invoice_id)s (%(amount)s due)."
    ),
    "dunning.case.recovered": N_(
        "Invoice %(invoice_id)s is paid (%(amount)s); the case closed as %(outcome)s."
    ),
    "dunning.case.final_action": N_(
        "Invoice %(invoice_id)s remained unpaid (%(amount)s); the case closed as %(outcome)s."
    ),
    "dunning.case.needs_support": N_(
        "Invoice %(invoice_id)s needs a person from support (%(reason)s)."
    ),
}


class WebhookDeliveryError(Exception):
    """An endpoint did not take the event (non-2xx, timeout, unreachable): retried."""


def webhook_id(dedupe_key: str) -> str:
    """Stable per case and event, and free of the characters the signed content joins on."""
    return "msg_" + hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]


def summary(
    input: NotificationInput,
    language: str = MERCHANT_LANGUAGE,
    catalog: gettext.NullTranslations | None = None,
) -> str:
    """One sentence for a person: ids, the amount and codes, never the customer's details."""
    catalog = catalog or translations(language)
    event = input.event or "dunning.case.step"
    values = {
        "amount": format_money(input.amount_due, input.currency, language),
        "invoice_id": input.invoice_id,
        "step": input.step if input.step is not None else "?",
        "outcome": input.outcome.value if input.outcome else "-",
        "reason": input.reason_code or "-",
    }
    return catalog.gettext(_SUMMARIES[event]) % values


def event_body(input: NotificationInput) -> str:
    event = input.event or "dunning.case.step"
    occurred = input.occurred_at
    data = {
        "case_id": f"dunning-{input.invoice_id}",
        "invoice_id": input.invoice_id,
        "customer_id": input.customer_id,
        "subscription_id": input.subscription_id,
        "amount_due": input.amount_due,
        "currency": input.currency,
        "step": input.step,
        "level": input.level,
        "template": input.template,
        "attempts": input.attempts,
        "outcome": input.outcome,
        "reason": input.reason_code,
        "channels": list(input.reached),
        "final_action": input.final_action,
        "final_deadline": input.final_deadline.isoformat() if input.final_deadline else None,
        "summary": summary(input),
    }
    body = {
        "type": event,
        "timestamp": occurred.isoformat() if occurred else None,
        "data": {k: v for k, v in data.items() if v is not None and v != []},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


class MerchantWebhookActivities:
    def __init__(
        self,
        http: httpx.Client,
        notifications: NotificationStore,
        urls: Sequence[str],
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.notifications = notifications
        self.urls = list(urls)
        self.secret = secret
        self.clock = clock

    @activity.defn(name="send_webhook")
    @compact_failures
    def send_webhook(self, input: NotificationInput) -> NotificationResult:
        key = channel_key(input.dedupe_key, "webhook")
        msg_id = webhook_id(key)
        if not self.urls or not self.secret:
            return NotificationResult(
                dedupe_key=key, channel="webhook", status="skipped", detail="no endpoints"
            )
        body = event_body(input)
        attempt = activity.info().attempt
        failures, sent = [], 0
        for number, url in enumerate(self.urls, 1):
            endpoint_key = f"{key}:{number}"
            claimed, row = self.notifications.claim(
                attempt=attempt,
                invoice_id=input.invoice_id,
                dedupe_key=endpoint_key,
                channel="webhook",
                template=(input.event or "dunning.case.step")[:50],
                level=input.level,
                step=input.step,
                subject=msg_id,
                body_text=body,
            )
            if not claimed and row.status == "sent":
                sent += 1
                continue
            # Uncertain or an earlier attempt's claim: sending again is safe, the receiver
            # dedupes by webhook-id (that is what the id is for).
            if not claimed and not self.notifications.reclaim_uncertain(endpoint_key, attempt):
                failures.append(f"endpoint {number}: another attempt is delivering")
                continue
            problem = self._post(url, msg_id, body)
            if problem is None:
                self.notifications.settle(endpoint_key, "sent", error=None)
                sent += 1
            else:
                self.notifications.settle(endpoint_key, "failed_retryable", error=problem)
                failures.append(f"endpoint {number}: {problem}")
        if failures:
            raise WebhookDeliveryError("; ".join(failures)[:500])
        return NotificationResult(
            dedupe_key=key, channel="webhook", status="sent", provider_message_id=msg_id,
            detail=f"{sent} endpoint(s)",
        )  # fmt: skip

    def _post(self, url: str, msg_id: str, body: str) -> str | None:
        """None when the endpoint took it (2xx), else why not (no URL: it may hold a token)."""
        signed = headers(self.secret, msg_id, int(self.clock()), body)
        try:
            response = self.http.post(url, content=body.encode(), headers=signed)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"answered {response.status_code}"
