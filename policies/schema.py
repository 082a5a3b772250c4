"""The dunning policy format (see policies/default.yaml and the README's "Policy format")."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.customer_schema import QuietHours, SelfService
from policies.durations import Duration

Level = Literal["friendly", "reminder", "urgent", "final"]
FinalAction = Literal["cancel_subscription", "mark_uncollectible", "leave_past_due"]
StepTemplate = Literal["payment_failed", "reminder", "urgent", "final_notice"]
AdviceCode = Literal["do_not_try_again", "try_again_later", "confirm_card_data"]
# The channel registry: each name is an activity `send_{name}` taking a NotificationInput
# (activities/: one class per external system). A new channel is a name here and its class.
Channel = Literal["email", "sms", "in_app", "webhook"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
NotifyMode = Literal["all", "first"]


class DeclineClass(StrEnum):
    SOFT = "soft"
    """Retry on schedule: the same card may well work later (e.g. insufficient_funds)."""
    NEW_PAYMENT_METHOD = "new_payment_method"
    """Retrying the same card cannot work: ask the customer and retry once they update it."""
    AUTHENTICATION = "authentication"
    """The issuer wants 3-D Secure: send the pay/authenticate link, no off-session retry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Notify(_Strict):
    channels: tuple[Channel, ...] = Field(min_length=1, description="in order of preference")
    # all: every listed channel the customer can receive; first: the first one that reaches
    # the customer (a fallback chain).
    mode: NotifyMode = "all"

    @model_validator(mode="after")
    def _no_repeats(self) -> Notify:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("a channel is listed twice")
        return self


EMAIL_ONLY = Notify(channels=("email",))
# Paydays are at most 22 days apart (the 15th moved past a long holiday such as China's Spring
# Festival; 16 in most countries), so a longer bound would only hide a typo.
MAX_PAYDAY_WAIT = timedelta(days=31)


class Payday(_Strict):
    """Move the step's charge to the customer's next payday (policies/payday.py)."""

    within: Duration = Field(description="longest the step may wait for a payday")

    @model_validator(mode="after")
    def _bounded(self) -> Payday:
        if not timedelta(0) < self.within <= MAX_PAYDAY_WAIT:
            raise ValueError("payday.within must be more than 0 and at most 31d")
        return self


class Step(_Strict):
    offset: Duration = Field(description="time after the first failure")
    retry: bool = Field(description="retry the charge at this step (soft declines only)")
    template: StepTemplate | None = Field(default=None, description="message to send, if any")
    level: Level
    # Which channels carry the step's message; a step with a template and no `notify` sends
    # email, as policy files written before channels existed expect.
    notify: Notify | None = None
    # None (policy files written before paydays, and the policies in running cases' histories):
    # the step runs at its offset.
    payday: Payday | None = None

    @model_validator(mode="after")
    def _notify_needs_a_message(self) -> Step:
        if self.notify is not None and self.template is None:
            raise ValueError("notify needs a template: the message to send")
        return self

    @model_validator(mode="after")
    def _payday_moves_a_charge(self) -> Step:
        if self.payday is not None and not self.retry:
            raise ValueError("payday needs retry: true: a payday only moves a charge")
        return self

    @property
    def channels(self) -> Notify | None:
        """The step's channels and mode; None when the step sends nothing."""
        if self.template is None:
            return None
        return self.notify or EMAIL_ONLY


class Final(_Strict):
    action: FinalAction
    after: Duration = Field(description="time after the first failure; grace moves it later")


class Grace(_Strict):
    max_days_per_grant: int = Field(ge=1, le=365)
    max_total_days: int = Field(ge=0, le=730)
    # How long one granted "day" is: a day, except in seconds-scale demo policies, where a
    # grant must finish while someone watches.
    day: Duration = Field(default=timedelta(days=1), description="length of one grace day")

    @model_validator(mode="after")
    def _per_grant_within_total(self) -> Grace:
        if self.max_days_per_grant > self.max_total_days and self.max_total_days > 0:
            raise ValueError("max_days_per_grant cannot exceed max_total_days")
        return self


def _default_advice() -> dict[AdviceCode, DeclineClass]:
    # Stripe: advice_code supersedes the decline code. do_not_try_again means the issuer
    # will keep refusing this card; confirm_card_data means the stored details are wrong.
    return {
        "do_not_try_again": DeclineClass.NEW_PAYMENT_METHOD,
        "try_again_later": DeclineClass.SOFT,
        "confirm_card_data": DeclineClass.NEW_PAYMENT_METHOD,
    }


class Declines(_Strict):
    new_payment_method: frozenset[str] = frozenset()
    authentication: frozenset[str] = frozenset()
    soft: frozenset[str] = frozenset()
    default: DeclineClass = DeclineClass.SOFT
    advice_codes: dict[AdviceCode, DeclineClass] = Field(default_factory=_default_advice)

    @model_validator(mode="after")
    def _disjoint(self) -> Declines:
        groups = {
            "new_payment_method": self.new_payment_method,
            "authentication": self.authentication,
            "soft": self.soft,
        }
        seen: dict[str, str] = {}
        for group, codes in groups.items():
            for code in codes:
                if code in seen:
                    raise ValueError(
                        f"decline code {code!r} is listed in both {seen[code]} and {group}"
                    )
                seen[code] = group
        return self


class Policy(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    max_attempts: int = Field(ge=0, le=50, description="cap on automatic charge retries")
    # Charges seconds apart look like card testing to issuers and Stripe's fraud checks; after
    # an outage, overdue steps collapse to the latest one and charges keep this distance.
    min_charge_spacing: Duration = Field(
        default=timedelta(hours=12), description="least time between two scheduled charges"
    )
    steps: tuple[Step, ...] = Field(min_length=1)
    final: Final
    grace: Grace
    declines: Declines = Declines()
    self_service: SelfService = SelfService()
    # None (a policy without the section, and the policies recorded in cases opened before
    # it existed): messages go out at any hour. default.yaml sets 21:00-08:00.
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _schedule_is_monotonic(self) -> Policy:
        previous: timedelta | None = None
        for index, step in enumerate(self.steps):
            if previous is not None and step.offset <= previous:
                raise ValueError(
                    f"steps[{index}].offset must be later than steps[{index - 1}].offset"
                )
            previous = step.offset
        if self.final.after <= self.steps[-1].offset:
            raise ValueError("final.after must be later than the last step's offset")
        return self
