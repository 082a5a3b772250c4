"""In-app channel: a notice in the merchant's own app, stored in the ledger's notifications
(channel `in_app`) and read by the merchant's backend through `GET /api/customers/{id}/
notifications`. The ledger is the provider here, so one insert keyed by the message's key is
the whole send: a retry finds the row and sends nothing twice."""

from __future__ import annotations

import gettext

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.email_render import EmailContext, message_context, render_email
from activities.failures import compact_failures
from activities.message_copy import PageLink
from activities.sms_render import render_text
from models.activities import NotificationInput, NotificationResult, channel_key
from models.notification_store import NotificationStore


def render_notice(
    template: str, context: EmailContext, catalog: gettext.NullTranslations | None = None
) -> tuple[str, str]:
    """The notice's title (the email's subject) and text (the SMS's, without the opt-out hint,
    which the app does not need), in the customer's language."""
    return (
        render_email(template, context, catalog).subject,
        render_text(template, context, catalog=catalog),
    )


class InAppActivities:
    def __init__(
        self,
        notifications: NotificationStore,
        update_payment_url: str = "",
        page_link: PageLink | None = None,
    ) -> None:
        self.notifications = notifications
        self.update_payment_url = update_payment_url
        self.page_link = page_link

    @activity.defn(name="send_in_app")
    @compact_failures
    def send_in_app(self, input: NotificationInput) -> NotificationResult:
        if input.template is None:
            raise ApplicationError(
                "a notice needs a template", type="InvalidInput", non_retryable=True
            )
        key = channel_key(input.dedupe_key, "in_app")
        subject, text = render_notice(
            input.template, message_context(input, self.update_payment_url, self.page_link)
        )
        new = self.notifications.record(
            invoice_id=input.invoice_id,
            dedupe_key=key,
            channel="in_app",
            template=input.template,
            level=input.level,
            step=input.step,
            status="sent",
            claim_attempt=activity.info().attempt,
            subject=subject,
            body_text=text,
        )
        status = "sent" if new else "duplicate"
        return NotificationResult(dedupe_key=key, channel="in_app", status=status)
