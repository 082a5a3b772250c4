"""What a case knows about reaching its customer, and the merchant events it announces.

`Reach` is part of the case record (`Case.reach`): channels the customer opted out of while the
case ran (an SMS STOP), hard declines seen, and the case events waiting to be announced. The
announcements go out beside the case (`announce_loop`), like support bookkeeping, so a slow
merchant endpoint never holds up a charge or a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.activities import CaseEvent
    from models.dunning import Outcome
    from policies.schema import Channel

# The final action ran: the merchant hears `dunning.case.final_action` with the outcome.
FINAL_OUTCOMES = (
    Outcome.SUBSCRIPTION_CANCELED,
    Outcome.MARKED_UNCOLLECTIBLE,
    Outcome.LEFT_PAST_DUE,
)
# Support should look at a case once its customer's card was refused for good this often.
HARD_DECLINES_FOR_SUPPORT = 2


@dataclass(frozen=True)
class Announcement:
    event: CaseEvent
    key: str
    step: int | None = None
    outcome: Outcome | None = None
    reason_code: str | None = None
    reached: tuple[Channel, ...] = ()
    at: datetime | None = None


@dataclass
class Reach:
    opted_out: list[str] = field(default_factory=list)
    hard_declines: int = 0
    pending: list[Announcement] = field(default_factory=list)
    announced: set[str] = field(default_factory=set)
    # The customer asked for a person (payment page): automated messages wait until then.
    held_until: datetime | None = None

    def announce(self, channels: list[Channel], announcement: Announcement) -> None:
        """Queue a case event once per key, only where the case was opened to announce them
        (cases opened before, or without merchant endpoints, never schedule one)."""
        if channels and announcement.key not in self.announced:
            self.announced.add(announcement.key)
            self.pending.append(announcement)
