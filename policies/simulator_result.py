"""What a simulation run counts (`Tally`) and reports (`SimulationResult`), with definitions.

Every case ends exactly one way: recovered (by a scheduled retry, by a charge on a card the
customer gave, or by the customer paying the invoice) or in the policy's final action, so
`recovered + final_action == cases`. "Per recovered case" divides everything the policy sent
(over all cases) by the cases it recovered: the cost of one recovery.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

DAY = 86400.0
WEEK = 7 * DAY
HOW = ("retry", "new_card", "paid")


def night_or_weekend(failed_at: float, offset: float) -> tuple[bool, bool]:
    """UTC clock: `failed_at` seconds after Monday 00:00, `offset` seconds later."""
    at = (failed_at + offset) % WEEK
    hour = (at % DAY) / 3600
    return hour >= 22 or hour < 6, at >= 5 * DAY


@dataclass
class Tally:
    cases: int = 0
    recovered_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HOW, 0))
    final_action: int = 0
    amount_due: int = 0
    amount_recovered: int = 0
    charges: int = 0
    messages: int = 0
    replies: int = 0
    night: int = 0
    weekend: int = 0
    night_or_weekend: int = 0
    days: list[float] = field(default_factory=list)

    def add(
        self,
        amount: int,
        how: str | None,
        days: float,
        charges: list[float],
        failed_at: float,
        messages: int,
        replies: int,
    ) -> None:
        self.cases += 1
        self.amount_due += amount
        if how is None:
            self.final_action += 1
        else:
            self.recovered_by[how] += 1
            self.amount_recovered += amount
            self.days.append(days)
        self.charges += len(charges)
        for offset in charges:
            night, weekend = night_or_weekend(failed_at, offset)
            self.night += night
            self.weekend += weekend
            self.night_or_weekend += night or weekend
        self.messages += messages
        self.replies += replies

    def result(self, policy: str, model: str, currency: str, seed: int) -> SimulationResult:
        days = sorted(self.days)
        return SimulationResult(
            policy=policy,
            model=model,
            seed=seed,
            cases=self.cases,
            recovered=sum(self.recovered_by.values()),
            recovered_by=dict(self.recovered_by),
            final_action=self.final_action,
            currency=currency,
            amount_due=self.amount_due,
            amount_recovered=self.amount_recovered,
            charges=self.charges,
            messages=self.messages,
            replies=self.replies,
            charges_at_night=self.night,
            charges_on_weekend=self.weekend,
            charges_night_or_weekend=self.night_or_weekend,
            median_days_to_recover=statistics.median(days) if days else None,
            p90_days_to_recover=days[int(0.9 * (len(days) - 1))] if days else None,
        )


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class SimulationResult:
    policy: str
    model: str
    seed: int
    cases: int
    recovered: int
    recovered_by: dict[str, int]
    final_action: int
    currency: str
    amount_due: int
    amount_recovered: int
    charges: int
    messages: int
    replies: int
    charges_at_night: int
    charges_on_weekend: int
    charges_night_or_weekend: int
    median_days_to_recover: float | None
    p90_days_to_recover: float | None

    @property
    def rates(self) -> dict[str, float | None]:
        return {
            "recovery_rate": _ratio(self.recovered, self.cases),
            "revenue_recovery_rate": _ratio(self.amount_recovered, self.amount_due),
            "final_action_share": _ratio(self.final_action, self.cases),
            "charges_per_case": _ratio(self.charges, self.cases),
            "messages_per_case": _ratio(self.messages, self.cases),
            "charges_per_recovered": _ratio(self.charges, self.recovered),
            "messages_per_recovered": _ratio(self.messages, self.recovered),
            "replies_per_case": _ratio(self.replies, self.cases),
            "night_share": _ratio(self.charges_at_night, self.charges),
            "weekend_share": _ratio(self.charges_on_weekend, self.charges),
            "night_or_weekend_share": _ratio(self.charges_night_or_weekend, self.charges),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), **self.rates}
