"""The parts of Stripe event payloads we read, tolerant of every API version we may receive.

An endpoint receives events rendered in the account's API version (or the endpoint's pinned
one), so one deployment may see 2020-08-27 shapes and 2026 ones side by side during an upgrade.
Rules that follow from Stripe's changelog and the objects' reference:

- Unknown fields are ignored: Stripe adds fields without a new API version.
- An id field (`customer`, `subscription`, `payment_method` ...) may be an id or, when
  expanded, the object: both are reduced to the id.
- Invoices: before 2025-03-31.basil the subscription is `subscription`; since then it is
  `parent.subscription_details.subscription`, and `charge` / `payment_intent` are gone (payments
  live in `invoice.payments`). Any of these may be absent.
- `created` is a Unix timestamp (UTC).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

# Stripe ids are letters, digits and underscores (cus_..., in_..., evt_...). Anything else is
# refused, so an id can be put into a Temporal visibility query without quoting problems.
_STRIPE_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class PayloadError(ValueError):
    """The event is signed but lacks what we need; the message names the field."""


def _to_id(value: Any) -> Any:
    # Expanded objects arrive as {"id": "...", "object": "..."}; keep only the id.
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, str) and not _STRIPE_ID.match(value):
        raise ValueError("not a Stripe id")
    return value


StripeId = Annotated[str, BeforeValidator(_to_id)]


class StripeModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


M = TypeVar("M", bound=StripeModel)


class EventData(StripeModel):
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class EventRequest(StripeModel):
    id: str | None = None
    idempotency_key: str | None = None


class Event(StripeModel):
    """The event envelope (`object: "event"`), stable across API versions."""

    id: StripeId
    type: str
    api_version: str | None = None
    created: datetime
    livemode: bool = False
    data: EventData
    # The API request that caused the event (null fields for Stripe's automatic actions);
    # a bare request id string in API versions before 2017-05-25.
    request: EventRequest | str | None = None

    @property
    def object_id(self) -> str | None:
        value = self.data.object.get("id")
        return value if isinstance(value, str) else None

    @property
    def idempotency_key(self) -> str | None:
        return self.request.idempotency_key if isinstance(self.request, EventRequest) else None


class SubscriptionDetails(StripeModel):
    subscription: StripeId | None = None


class InvoiceParent(StripeModel):
    subscription_details: SubscriptionDetails | None = None


class LastPaymentError(StripeModel):
    decline_code: str | None = None
    advice_code: str | None = None
    code: str | None = None
    message: str | None = None


class InvoiceRef(StripeModel):
    """What the signal-only invoice events need: the id (the case is `dunning-{id}`)."""

    id: StripeId
    amount_paid: int | None = None
    hosted_invoice_url: str | None = None
    status: str | None = None


class Invoice(InvoiceRef):
    """invoice.payment_failed opens a case, so everything DunningInput needs is required."""

    customer: StripeId
    currency: str
    amount_due: int
    amount_remaining: int | None = None
    attempt_count: int | None = None
    subscription: StripeId | None = None  # API versions before 2025-03-31.basil
    parent: InvoiceParent | None = None  # 2025-03-31.basil and later
    # Only before basil, and only an id unless the sender expanded it.
    payment_intent: dict[str, Any] | str | None = None

    @property
    def subscription_id(self) -> str | None:
        if self.subscription:
            return self.subscription
        details = self.parent.subscription_details if self.parent else None
        return details.subscription if details else None

    @property
    def open_amount(self) -> int:
        # What is still owed: amount_remaining (after partial payments) when Stripe sends it.
        return self.amount_remaining if self.amount_remaining is not None else self.amount_due

    @property
    def last_payment_error(self) -> LastPaymentError | None:
        """Decline details, present only if the payment intent came expanded."""
        if isinstance(self.payment_intent, dict):
            error = self.payment_intent.get("last_payment_error")
            if isinstance(error, dict):
                return LastPaymentError.model_validate(error)
        return None


class Subscription(StripeModel):
    id: StripeId
    customer: StripeId | None = None
    status: str | None = None
    latest_invoice: StripeId | None = None


class PaymentMethod(StripeModel):
    id: StripeId
    customer: StripeId | None = None


class SetupIntent(StripeModel):
    id: StripeId
    customer: StripeId | None = None
    payment_method: StripeId | None = None
    status: str | None = None


class InvoiceSettings(StripeModel):
    default_payment_method: StripeId | None = None


class Customer(StripeModel):
    id: StripeId
    invoice_settings: InvoiceSettings | None = None


def _describe(err: ValidationError, prefix: str) -> str:
    problems = []
    for item in err.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"])
        problems.append(f"{prefix}{where}: {item['msg'].lower()}")
    return "; ".join(problems)


def parse_event(body: bytes) -> Event:
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PayloadError(f"body is not JSON: {err.__class__.__name__}") from err
    if not isinstance(raw, dict):
        raise PayloadError("body is not a JSON object")
    if raw.get("object") not in (None, "event"):
        raise PayloadError(f"object is {raw.get('object')!r}, expected 'event'")
    try:
        return Event.model_validate(raw)
    except ValidationError as err:
        raise PayloadError(_describe(err, "")) from err


def parse_object(event: Event, model: type[M]) -> M:
    """Read data.object as `model`; a PayloadError names the missing or bad field."""
    try:
        return model.model_validate(event.data.object)
    except ValidationError as err:
        raise PayloadError(f"{event.type}: {_describe(err, 'data.object.')}") from err
