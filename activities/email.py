"""SendGrid email activity: at most one message per dedupe key, recorded in the ledger.

The dedupe key is claimed in the database before the HTTP call and also sent to SendGrid as a
custom arg, so a message can be traced from the provider's event stream back to its case step.
"""

from __future__ import annotations

import socket
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail
from temporalio import activity

from activities.email_render import EmailContext, render_email
from models.activities import SendEmailInput, SendEmailResult
from models.notification_store import NotificationStore
from models.settings import Settings


def make_sendgrid_client(settings: Settings) -> SendGridAPIClient:
    kwargs = {"host": settings.sendgrid_api_host} if settings.sendgrid_api_host else {}
    client = SendGridAPIClient(api_key=settings.sendgrid_api_key, **kwargs)
    client.client.timeout = settings.sendgrid_timeout_seconds
    return client


class SendGridRetryableError(Exception):
    """SendGrid answered 429/5xx (or could not be reached): Temporal retries with backoff."""


class EmailActivities:
    def __init__(
        self,
        client: SendGridAPIClient,
        notifications: NotificationStore,
        sender: str,
        update_payment_url: str = "",
    ) -> None:
        self.client = client
        self.notifications = notifications
        self.sender = sender
        self.update_payment_url = update_payment_url

    @activity.defn(name="send_email")
    def send_email(self, input: SendEmailInput) -> SendEmailResult:
        return self._send(input)

    def _update_url(self, input: SendEmailInput) -> str | None:
        if not self.update_payment_url:
            return input.hosted_invoice_url
        return self.update_payment_url.format(customer=input.customer_id, invoice=input.invoice_id)

    def _send(self, input: SendEmailInput) -> SendEmailResult:
        rendered = render_email(
            input.template,
            EmailContext(
                customer_name=input.customer_name,
                locale=input.locale,
                amount_due=input.amount_due,
                currency=input.currency,
                invoice_id=input.invoice_id,
                hosted_invoice_url=input.hosted_invoice_url,
                update_payment_url=self._update_url(input),
                action_needed=input.action_needed,
                final_deadline=input.final_deadline,
                final_action=input.final_action,
                attempts=input.attempts,
            ),
        )
        claimed, row = self.notifications.claim(
            attempt=activity.info().attempt,
            invoice_id=input.invoice_id,
            dedupe_key=input.dedupe_key,
            template=input.template,
            level=input.level,
            step=input.step,
            to_address=input.to_email,
            subject=rendered.subject,
            body_text=rendered.text,
        )
        if not claimed:
            status = "uncertain" if row.status == "uncertain" else "duplicate"
            return SendEmailResult(
                dedupe_key=input.dedupe_key,
                status=status,
                provider_message_id=row.provider_message_id,
                detail=f"already {row.status}",
            )
        if not input.to_email:
            self.notifications.settle(input.dedupe_key, "no_address")
            return SendEmailResult(dedupe_key=input.dedupe_key, status="no_address")

        try:
            message = Mail(
                from_email=self.sender,
                to_emails=input.to_email,
                subject=rendered.subject,
                plain_text_content=rendered.text,
                html_content=rendered.html,
            )
            message.custom_arg = [
                CustomArg("dunning_dedupe_key", input.dedupe_key),
                CustomArg("invoice_id", input.invoice_id),
            ]
            body = message.get()
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
        self.notifications.settle(input.dedupe_key, "sent", provider_message_id=message_id)
        return SendEmailResult(
            dedupe_key=input.dedupe_key, status="sent", provider_message_id=message_id
        )

    def _failed(self, input: SendEmailInput, exc: HTTPError) -> SendEmailResult:
        status = int(exc.status_code)
        body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body)
        if status == 429 or status >= 500 or status in (401, 403):
            # 401/403 is our misconfigured key, not the customer's fault: keep retrying so the
            # message goes out once ops fix the key, instead of silently dropping it.
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

    def _uncertain(self, input: SendEmailInput, exc: Exception) -> SendEmailResult:
        # The request may have been accepted before the timeout; at most once means no resend.
        self.notifications.settle(input.dedupe_key, "uncertain", error=f"timeout: {exc}")
        return SendEmailResult(dedupe_key=input.dedupe_key, status="uncertain", detail=str(exc))
