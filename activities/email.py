"""SendGrid email activity: exactly one message per dedupe key, recorded in the ledger.

The dedupe key is claimed in the database before the HTTP call and also sent to SendGrid as a
custom arg. When an earlier attempt's fate is unknown (the worker died around the call, or the
call timed out), the activity asks SendGrid's Email Activity API whether it holds a message
with that custom arg: found means sent, not found (once the claim is old enough) means SendGrid
never took it and it is sent now. An account without that API keeps the message `uncertain`,
listed by NotificationStore.unresolved, rather than risk a duplicate.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta
from typing import Any, NoReturn
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.email_render import RenderedEmail, message_context, render_email
from activities.failures import compact_failures
from activities.message_copy import PageLink
from models.activities import SendEmailInput, SendEmailResult
from models.channel_store import ChannelStore
from models.ledger import Notification, aware, utcnow
from models.notification_store import NEEDS_A_LOOK, NotificationStore, Refusal
from models.settings import Settings

DEDUPE_ARG = "dunning_dedupe_key"
log = logging.getLogger("dunning.email")
UNSUBSCRIBED = "the address unsubscribed (SendGrid event)"

# SendGrid builds the Email Activity feed asynchronously from processed events, so a message it
# accepted moments ago may not be listed yet. And an earlier attempt may still be sending: a
# sync activity that overran its start-to-close timeout (60 s, workflows/calls.py) keeps running
# in its thread while Temporal starts the next attempt, and its request can be accepted until
# the client timeout (SENDGRID_TIMEOUT_SECONDS) runs out. "Not listed" is taken as "never
# accepted" only once the claim is older than all of that together.
MIN_UNLISTED_AGE = timedelta(minutes=3)

# Email Activity API answers meaning "not available to this account or key": the paid add-on
# is missing (403/404), the key lacks the Email Activity scope (403) or is rejected (401).
FEED_UNAVAILABLE = (401, 403, 404)


def make_sendgrid_client(settings: Settings) -> SendGridAPIClient:
    kwargs = {"host": settings.sendgrid_api_host} if settings.sendgrid_api_host else {}
    client = SendGridAPIClient(api_key=settings.sendgrid_api_key, **kwargs)
    client.client.timeout = settings.sendgrid_timeout_seconds
    return client


def sendgrid_mail(
    sender: str, to: str, subject: str, text: str, html: str, custom_args: dict[str, str]
) -> dict[str, Any]:
    """The v3 mail/send body; SendGrid echoes the custom args in its events and Email Activity,
    which is how a message is found again (DEDUPE_ARG). Raises on an address the SDK cannot
    parse."""
    message = Mail(
        from_email=sender,
        to_emails=to,
        subject=subject,
        plain_text_content=text,
        html_content=html,
    )
    message.custom_arg = [CustomArg(name, value) for name, value in custom_args.items()]
    return message.get()


def retryable_status(status: int) -> bool:
    """SendGrid's answers worth sending again: rate limits and its own errors, and 401/403 (our
    misconfigured key, not the customer's fault: the message goes out once ops fix the key)."""
    return status == 429 or status >= 500 or status in (401, 403)


class SendGridRetryableError(Exception):
    """SendGrid answered 429/5xx (or could not be reached): Temporal retries with backoff."""


def delivery_unknown(detail: str, wait: timedelta | None = None) -> ApplicationError:
    """Retryable: the next attempt asks SendGrid again (after `wait`, when given)."""
    delay = wait if wait is not None and wait > timedelta(0) else None
    return ApplicationError(detail, type="SendGridDeliveryUnknown", next_retry_delay=delay)


class EmailActivities:
    def __init__(
        self,
        client: SendGridAPIClient,
        notifications: NotificationStore,
        sender: str,
        update_payment_url: str = "",
        min_unlisted_age: timedelta = MIN_UNLISTED_AGE,
        channels: ChannelStore | None = None,
        page_link: PageLink | None = None,
    ) -> None:
        self.client = client
        self.notifications = notifications
        self.sender = sender
        self.update_payment_url = update_payment_url
        self.min_unlisted_age = min_unlisted_age
        # The suppression list (an unsubscribe or spam report from SendGrid's events).
        self.channels = channels
        self.page_link = page_link

    @activity.defn(name="send_email")
    @compact_failures
    def send_email(self, input: SendEmailInput) -> SendEmailResult:
        if input.template is None:
            raise ApplicationError(
                "an email needs a template", type="InvalidInput", non_retryable=True
            )
        return self._send(input)

    def _send(self, input: SendEmailInput) -> SendEmailResult:
        assert input.template is not None
        context = message_context(input, self.update_payment_url, self.page_link)
        rendered = render_email(input.template, context)
        attempt = activity.info().attempt
        claimed, row = self.notifications.claim(
            attempt=attempt,
            unless=self._unsubscribed(input.to_email),
            invoice_id=input.invoice_id,
            dedupe_key=input.dedupe_key,
            template=input.template,
            level=input.level,
            step=input.step,
            to_address=input.to_email,
            subject=rendered.subject,
            body_text=rendered.text,
        )
        log.debug("Claim %s attempt %s: %s, %s", input.dedupe_key, attempt, claimed, row.status)
        if claimed and row.status == "opted_out":  # settled so by the claim itself
            return SendEmailResult(dedupe_key=input.dedupe_key, status="skipped", detail=row.error)
        if not claimed and row.status == "uncertain":
            resolved = self._resolve(input, row, attempt)
            if resolved is not None:
                return resolved
            address = input.to_email
            if address and self.channels and self.channels.is_opted_out("email", address):
                self.notifications.settle(input.dedupe_key, "opted_out", error=UNSUBSCRIBED)
                return SendEmailResult(
                    dedupe_key=input.dedupe_key, status="skipped", detail=UNSUBSCRIBED
                )
        elif not claimed:
            return SendEmailResult(
                dedupe_key=input.dedupe_key,
                status="duplicate",
                provider_message_id=row.provider_message_id,
                detail=f"already {row.status}",
            )
        return self._deliver(input, rendered)

    def _unsubscribed(self, address: str | None) -> Refusal | None:
        """The suppression list, read inside the claim's INSERT."""
        if not address or self.channels is None:
            return None
        return Refusal("email", address, UNSUBSCRIBED)

    def _deliver(self, input: SendEmailInput, rendered: RenderedEmail) -> SendEmailResult:
        """Send a message whose key this attempt holds (status `claimed`)."""
        if not input.to_email:
            self.notifications.settle(input.dedupe_key, "no_address")
            return SendEmailResult(dedupe_key=input.dedupe_key, status="no_address")

        try:
            body = sendgrid_mail(
                self.sender,
                input.to_email,
                rendered.subject,
                rendered.text,
                rendered.html,
                {DEDUPE_ARG: input.dedupe_key, "invoice_id": input.invoice_id},
            )
        except (KeyError, ValueError, TypeError) as exc:
            # The SDK cannot even parse the address: no retry can fix that, so the case goes on.
            detail = f"invalid recipient address: {exc!r}"
            self.notifications.settle(input.dedupe_key, "rejected", error=detail)
            return SendEmailResult(dedupe_key=input.dedupe_key, status="rejected", detail=detail)
        try:
            response = self.client.send(body)
        except HTTPError as exc:
            return self._failed(input, exc)
        except TimeoutError as exc:
            return self._uncertain(input, exc)
        except URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                return self._uncertain(input, exc)
            # Connection refused or DNS failure: nothing reached SendGrid, safe to send again.
            self.notifications.settle(input.dedupe_key, "failed_retryable", error=str(exc))
            raise SendGridRetryableError(f"SendGrid unreachable: {exc.reason}") from exc
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        self.notifications.settle_sent(input.dedupe_key, message_id)
        return SendEmailResult(
            dedupe_key=input.dedupe_key, status="sent", provider_message_id=message_id
        )

    def _failed(self, input: SendEmailInput, exc: HTTPError) -> SendEmailResult:
        status = int(exc.status_code)
        body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body)
        if retryable_status(status):
            self.notifications.settle(
                input.dedupe_key, "failed_retryable", error=f"{status}: {body[:500]}"
            )
            raise SendGridRetryableError(f"SendGrid answered {status}: {body[:200]}") from exc
        # Other 4xx: SendGrid refused this message (bad address, rejected content); retrying
        # the same request cannot succeed, so record it and let the case go on.
        self.notifications.settle(input.dedupe_key, "rejected", error=f"{status}: {body[:500]}")
        return SendEmailResult(
            dedupe_key=input.dedupe_key, status="rejected", detail=f"{status}: {body[:200]}"
        )

    def _uncertain(self, input: SendEmailInput, exc: Exception) -> NoReturn:
        # SendGrid may have accepted the request before the timeout: never send blindly again.
        # The next attempt asks SendGrid whether it has the message.
        self.notifications.settle(input.dedupe_key, "uncertain", error=f"timeout: {exc}")
        raise delivery_unknown(f"SendGrid did not answer in time ({exc}); will ask it") from exc

    def _resolve(
        self, input: SendEmailInput, row: Notification, attempt: int
    ) -> SendEmailResult | None:
        """Settle an uncertain key from SendGrid's records; None means "send it now"."""
        key = input.dedupe_key
        if not input.to_email:
            # Nothing is ever sent without an address: the earlier attempt cannot have sent it.
            return None if self.notifications.reclaim_uncertain(key, attempt) else self._raced()
        try:
            found = self.find_accepted(input.dedupe_key, input.to_email)
        except HTTPError as exc:
            status = int(exc.status_code)
            if status == 429 or status >= 500:
                raise SendGridRetryableError(f"Email Activity API answered {status}") from exc
            # Not available, or it refused our query: we cannot tell, so never risk a duplicate.
            # The row stays uncertain and is listed by NotificationStore.unresolved.
            why = "is not available" if status in FEED_UNAVAILABLE else "refused the query"
            detail = (
                f"attempt {row.claim_attempt} may not have reached SendGrid and its Email "
                f"Activity API {why} ({status}); not re-sent, {NEEDS_A_LOOK}"
            )
            self.notifications.settle(key, "uncertain", error=detail)
            return SendEmailResult(dedupe_key=key, status="uncertain", detail=detail)
        except (TimeoutError, URLError) as exc:
            raise SendGridRetryableError(f"Email Activity API unreachable: {exc}") from exc
        log.info("Uncertain %s: %s in SendGrid's activity", key, "found" if found else "not")
        if found is not None:
            msg_id = str(found["msg_id"])
            self.notifications.settle(key, "sent", provider_message_id=msg_id, error=None)
            return SendEmailResult(
                dedupe_key=key,
                status="sent",
                provider_message_id=msg_id,
                detail="found in SendGrid's email activity; not re-sent",
            )
        wait = self.min_unlisted_age - (utcnow() - aware(row.created_at))
        if wait > timedelta(0):
            seconds = f"{wait.total_seconds():.0f}s"
            raise delivery_unknown(
                f"not in SendGrid's email activity yet; ask again in {seconds}", wait
            )
        return None if self.notifications.reclaim_uncertain(key, attempt) else self._raced()

    def _raced(self) -> NoReturn:
        # Another attempt (a zombie of a timed-out one) settled the row first: look again.
        raise delivery_unknown("another attempt resolved this message meanwhile")

    def find_accepted(self, dedupe_key: str, to_email: str) -> dict[str, Any] | None:
        """The Email Activity API's entry for this dedupe key, if SendGrid accepted it."""
        value = dedupe_key.replace("\\", "\\\\").replace('"', '\\"')
        response = self.client.client.messages.get(
            query_params={"query": f"unique_args['{DEDUPE_ARG}']=\"{value}\"", "limit": 10}
        )
        raw = response.body
        body = json.loads(raw.decode() if isinstance(raw, bytes) else raw or "{}")
        for message in body.get("messages") or []:
            # Only trust an entry addressed to this recipient: a feed that ignored the query
            # would otherwise make any recent message look like ours.
            listed_to = str(message.get("to_email") or "").lower()
            if message.get("msg_id") and listed_to == to_email.lower():
                return dict(message)
        return None
