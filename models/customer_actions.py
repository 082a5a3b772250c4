"""What the customer can do from the payment page (`/pay/{token}`), each a workflow Update.

Every Update has a validator on the workflow: a refused action changes nothing, enters no
history and its message is shown on the page as the answer. `request_id` names the click, so a
page submitted twice is one action (the workflow answers the second with the first's result).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from models.dunning import DunningState

# Update names, as the API calls them and the Temporal UI lists them.
CUSTOMER_NEW_CARD = "customer_new_card"
CUSTOMER_PAY_NOW = "customer_pay_now"
CUSTOMER_MORE_TIME = "customer_more_time"
CUSTOMER_PAUSE = "customer_pause_subscription"
CUSTOMER_CANCEL = "customer_cancel"
CUSTOMER_CONTACT = "customer_contact"

MAX_CONTACT_MESSAGE = 2000

FeedbackReason = Literal[
    "card_expired", "no_funds_until_payday", "bank_blocked", "dont_need", "too_expensive", "other"
]


class CustomerActionInput(BaseModel):
    request_id: str = Field(min_length=1, max_length=200)


class CustomerNewCardInput(CustomerActionInput):
    """A payment method the customer just attached (a confirmed SetupIntent): charge it now."""

    payment_method_id: str = Field(min_length=1, max_length=255)


class CustomerPayNowInput(CustomerActionInput):
    """Charge the card on file now."""


class CustomerMoreTimeInput(CustomerActionInput):
    """Grace until this date (the customer's choice within the policy's self-service limit)."""

    until: date


class CustomerPauseInput(CustomerActionInput):
    """Pause the subscription's collection (when the policy allows): the case ends."""


class CustomerCancelInput(CustomerActionInput):
    """Cancel now: the policy's final action, confirmed on the page first."""


class CustomerContactInput(CustomerActionInput):
    """A message for support; automated messages pause for the policy's contact pause."""

    message: str = Field(min_length=1, max_length=MAX_CONTACT_MESSAGE)


class CustomerActionResult(BaseModel):
    action: str
    # What the page shows the customer (plain words, English; the page translates by `action`).
    message: str
    state: DunningState
