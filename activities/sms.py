"""SMS channel: Twilio's Messages API, at most one text per message key, recorded in the ledger.

Twilio has no idempotency key on Messages: the same request twice sends twice. So the key
(`dunning-{invoice}:step:4:sms`) is claimed in the ledger before the call, as email does. When
an earlier attempt's fate is unknown (the worker died around the call, or it timed out), the
activity lists the messages Twilio holds for that number since the claim: the same body there
means it was sent; none, once the claim is older than any attempt can still be sending, means
it was not, and it is sent now.

Twilio's refusals are classified here: an invalid or unreachable number (21211, 21614) is a
`rejected` result, an opted-out recipient (21610) is `skipped` and recorded as an opt-out;
429, 5xx and unreachable Twilio raise and Temporal retries. The case never fails on a text.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NoReturn

import requests
from temporalio import activity
from temporalio.exceptions import ApplicationError
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from activities.email_render import message_context
from activities.failures import compact_failures
from activities.message_copy import PageLink
from activities.sms_render import SmsTooLong, render_sms
from activities.twilio_client import to_e164
from models.activities import NotificationInput, NotificationResult, channel_key
from models.channel_store import ChannelStore
from models.ledger import Notification, aware, utcnow
from models.notification_store import NotificationStore

log = logging.getLogger("dunning.sms")

# Twilio error codes (twilio.com/docs/api/errors) that no retry can fix.
INVALID_NUMBER = {21211, 21614, 21612, 21408}  # invalid To, not mobile, unreachable, region
OPTED_OUT = 21610
# A message Twilio accepted is listed at once, but an attempt that overran its start-to-close
# timeout may still be sending until the client timeout runs out: "not listed" means "never
# sent" only once the claim is older than that.
MIN_UNLISTED_AGE = timedelta(minutes=2)


class TwilioRetryableError(Exception):
    """Twilio answered 429/5xx or could not be reached: Temporal retries with backoff."""


def delivery_unknown(detail: str, wait: timedelta | None = None) -> ApplicationError:
    delay = wait if wait is not None and wait > timedelta(0) else None
    return ApplicationError(detail, type="TwilioDeliveryUnknown", next_retry_delay=delay)


class SmsActivities:
    def __init__(
        self,
        client: Client | None,
        notifications: NotificationStore,
        channels: ChannelStore,
        sender: str,
        update_payment_url: str = "",
        status_callback: str | None = None,
        min_unlisted_age: timedelta = MIN_UNLISTED_AGE,
        page_link: PageLink | None = None,
    ) -> None:
        self.client = client
        self.notifications = notifications
        self.channels = channels
        self.sender = sender
        self.update_payment_url = update_payment_url
        self.status_callback = status_callback
        self.min_unlisted_age = min_unlisted_age
        self.page_link = page_link

    @activity.defn(name="send_sms")
    @compact_failures
    def send_sms(self, input: NotificationInput) -> NotificationResult:
        key = channel_key(input.dedupe_key, "sms")
        if input.template is None:
            raise ApplicationError(
                "an SMS needs a template", type="InvalidInput", non_retryable=True
            )
        phone: str | None = None
        problem: tuple[str, str] | None = None
        try:
            phone = to_e164(input.to_phone, input.country) if input.to_phone else None
            context = message_context(input, self.update_payment_url, self.page_link)
            body = render_sms(input.template, context)
        except SmsTooLong as exc:
            body, problem = "", ("rejected", str(exc))
        except ValueError as exc:
            body, problem = "", ("rejected", f"invalid phone number: {exc}")
        if problem is None and phone is None:
            problem = ("no_address", "no phone number")
        elif problem is None and self.client is None:
            problem = ("skipped", "sms not configured (TWILIO_ACCOUNT_SID)")
        elif problem is None and phone and self.channels.is_opted_out("sms", phone):
            problem = ("opted_out", "the number opted out (STOP)")
        attempt = activity.info().attempt
        claimed, row = self.notifications.claim(
            attempt=attempt,
            invoice_id=input.invoice_id,
            dedupe_key=key,
            channel="sms",
            template=input.template,
            level=input.level,
            step=input.step,
            to_address=phone,
            body_text=body or None,
        )
        if not claimed and row.status == "uncertain":
            assert phone is not None
            resolved = self._resolve(key, phone, body, row, attempt)
            if resolved is not None:
                return resolved
        elif not claimed:
            return self._result(key, "duplicate", row.provider_message_id, f"already {row.status}")
        if problem is not None:
            return self._refused(key, *problem)
        assert phone is not None
        return self._deliver(key, phone, body)

    @staticmethod
    def _result(
        key: str, status: str, provider_id: str | None = None, detail: str | None = None
    ) -> NotificationResult:
        return NotificationResult.model_validate(
            {"dedupe_key": key, "channel": "sms", "status": status,
             "provider_message_id": provider_id, "detail": detail}
        )  # fmt: skip

    def _refused(self, key: str, ledger_status: str, detail: str) -> NotificationResult:
        self.notifications.settle(key, ledger_status, error=detail)
        status = "skipped" if ledger_status == "opted_out" else ledger_status
        return self._result(key, status, detail=detail)

    def _deliver(self, key: str, phone: str, body: str) -> NotificationResult:
        assert self.client is not None
        sender = (
            {"messaging_service_sid": self.sender}
            if self.sender.startswith("MG")
            else {"from_": self.sender}
        )
        callback = {"status_callback": self.status_callback} if self.status_callback else {}
        try:
            message = self.client.messages.create(to=phone, body=body, **sender, **callback)
        except TwilioRestException as exc:
            return self._failed(key, phone, exc)
        except requests.Timeout as exc:
            # Twilio may have taken it before the timeout: never send blindly again.
            self.notifications.settle(key, "uncertain", error=f"timeout: {exc}")
            raise delivery_unknown("Twilio did not answer in time; will ask it") from exc
        except requests.RequestException as exc:
            # Nothing reached Twilio (connection refused, DNS): safe to send again.
            self.notifications.settle(key, "failed_retryable", error=str(exc)[:500])
            raise TwilioRetryableError(f"Twilio unreachable: {type(exc).__name__}") from exc
        # In line, not later (models/later.py): Twilio's status callbacks name the message by
        # its SID, which this settle writes, and a callback may come within milliseconds.
        self.notifications.settle(key, "sent", provider_message_id=message.sid)
        return self._result(key, "sent", message.sid)

    def _failed(self, key: str, phone: str, exc: TwilioRestException) -> NotificationResult:
        detail = f"{exc.status} / {exc.code}: {exc.msg}"[:500]
        if exc.code == OPTED_OUT:
            # The carrier or Twilio holds a STOP from this number we may not have heard of.
            self.channels.set_opt_out("sms", phone, True, f"twilio {OPTED_OUT}")
            return self._refused(key, "opted_out", detail)
        if exc.code in INVALID_NUMBER:
            return self._refused(key, "rejected", detail)
        if exc.status == 429 or exc.status >= 500 or exc.status in (401, 403):
            # 401/403 is our credentials, not the customer: keep retrying until ops fix them.
            self.notifications.settle(key, "failed_retryable", error=detail)
            raise TwilioRetryableError(f"Twilio answered {detail}") from exc
        return self._refused(key, "rejected", detail)

    def _resolve(
        self, key: str, phone: str, body: str, row: Notification, attempt: int
    ) -> NotificationResult | None:
        """Settle an uncertain key from Twilio's message list; None means "send it now"."""
        claimed_at = aware(row.created_at)
        sid = self.find_sent(phone, body, claimed_at)
        if sid is not None:
            log.info("Uncertain %s: found in Twilio's messages", key)
            self.notifications.settle(key, "sent", provider_message_id=sid, error=None)
            return self._result(key, "sent", sid, "found in Twilio; not re-sent")
        wait = self.min_unlisted_age - (utcnow() - claimed_at)
        if wait > timedelta(0):
            raise delivery_unknown(f"not in Twilio's messages yet; ask again in {wait}", wait)
        if self.notifications.reclaim_uncertain(key, attempt):
            return None
        self._raced()

    def _raced(self) -> NoReturn:
        raise delivery_unknown("another attempt resolved this message meanwhile")

    def find_sent(self, phone: str, body: str, claimed_at: datetime) -> str | None:
        """The SID of the message Twilio holds with this body for `phone` since the claim."""
        assert self.client is not None
        since = claimed_at - timedelta(minutes=1)  # clocks differ; the body decides
        try:
            listed = self.client.messages.list(
                to=phone, date_sent_after=since.replace(microsecond=0), limit=100
            )
        except TwilioRestException as exc:
            raise TwilioRetryableError(f"Twilio message list: {exc.status}") from exc
        except requests.RequestException as exc:
            raise TwilioRetryableError(f"Twilio unreachable: {type(exc).__name__}") from exc
        for message in listed:
            created = message.date_created
            if message.body == body and (created is None or created >= since):
                return str(message.sid)
        return None
