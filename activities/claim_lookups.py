"""Each channel's provider records, read for the worker's claim sweep (models/claim_sweep.py).

The same questions an attempt asks about its own unsettled claim (activities/email.py and
sms.py): does SendGrid's Email Activity list a message with this dedupe key for this address,
does Twilio hold a text with this body for this number since the claim? "Not listed" counts
only once the claim is older than the provider's listing delay.
"""

from __future__ import annotations

from datetime import timedelta

from python_http_client.exceptions import HTTPError

from activities.email import FEED_UNAVAILABLE, EmailActivities
from activities.sms import SmsActivities
from models.claim_sweep import Lookup, ProviderRecord
from models.ledger import Notification, aware, utcnow
from models.notification_store import NEEDS_A_LOOK


class ClaimLookups:
    def __init__(self, email: EmailActivities, sms: SmsActivities | None = None) -> None:
        self.email_activities = email
        self.sms_activities = sms

    def by_channel(self) -> dict[str, Lookup]:
        lookups: dict[str, Lookup] = {"email": self.email}
        if self.sms_activities is not None and self.sms_activities.client is not None:
            lookups["sms"] = self.sms  # SMS configured (TWILIO_ACCOUNT_SID)
        return lookups

    def email(self, row: Notification) -> ProviderRecord | None:
        if not row.to_address:  # nothing is ever sent without an address
            return ProviderRecord("absent")
        try:
            found = self.email_activities.find_accepted(row.dedupe_key, row.to_address)
        except HTTPError as exc:
            status = int(exc.status_code)
            if status not in FEED_UNAVAILABLE:
                raise  # SendGrid busy or away: the next sweep asks again
            detail = (
                f"the case ended while attempt {row.claim_attempt} was sending, and SendGrid's"
                f" Email Activity API is not available ({status}); {NEEDS_A_LOOK}"
            )
            return ProviderRecord("unknown", detail=detail)
        if found is not None:
            return ProviderRecord("sent", provider_message_id=str(found["msg_id"]))
        return _absent_once(row, self.email_activities.min_unlisted_age)

    def sms(self, row: Notification) -> ProviderRecord | None:
        if not row.to_address or not row.body_text:  # never sent without number and body
            return ProviderRecord("absent")
        sms = self.sms_activities
        assert sms is not None  # only listed by by_channel when configured
        sid = sms.find_sent(row.to_address, row.body_text, aware(row.created_at))
        if sid is not None:
            return ProviderRecord("sent", provider_message_id=sid)
        return _absent_once(row, sms.min_unlisted_age)


def _absent_once(row: Notification, listing_delay: timedelta) -> ProviderRecord | None:
    """Not listed means never accepted only once the listing has had time to show it."""
    if utcnow() - aware(row.created_at) < listing_delay:
        return None
    return ProviderRecord("absent")
