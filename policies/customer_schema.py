"""Policy sections about the customer's side: self-service limits and quiet hours.

Older policy files (and the policies recorded in running cases' histories) load unchanged:
self-service has defaults, and a policy without `quiet_hours` sends at any hour.
"""

from __future__ import annotations

from datetime import time, timedelta

from pydantic import BaseModel, ConfigDict, Field

from policies.durations import Duration


class SelfService(BaseModel):
    """What the customer may do alone on the payment page (`/pay/{token}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "Ask for more time": once per case, up to this many days later than the next charge.
    more_time_days: int = Field(default=7, ge=0, le=60)
    # "Pause the subscription": Stripe pause_collection for this long; False hides the action.
    allow_pause: bool = True
    pause_for: Duration = Field(default=timedelta(days=30))
    # "Talk to a person": automated messages hold this long so support can answer first.
    contact_holds_messages: Duration = Field(default=timedelta(days=3))


class QuietHours(BaseModel):
    """No message inside this window of the customer's local day (charges may still run).

    The zone is the customer's (preferences, else the Stripe address country), else `timezone`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(21, 0)
    end: time = time(8, 0)
    timezone: str = "UTC"
