"""The population a policy simulation runs on (policies/simulation/default_model.yaml).

A model says who fails and how they behave: the mix of first declines, how likely a retry of the
same card is to succeed, how customers answer messages, and how much their invoices are for.
Loading is the only I/O here; errors name the file and the field, as for policies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policies.durations import Duration
from policies.loader import problems, read_yaml

MODEL_DIR = Path(__file__).resolve().parent / "simulation"
DEFAULT_MODEL = MODEL_DIR / "default_model.yaml"

Share = float
MessageLevel = Literal["friendly", "reminder", "urgent", "final", "ask"]


class ModelError(ValueError):
    """A model file is missing, is not YAML, or does not match the model format."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _shares_sum_to_one(shares: list[float], what: str) -> None:
    # A mix that does not add up is almost always a typo; 0.1% slack absorbs rounding in YAML.
    total = sum(shares)
    if not math.isclose(total, 1.0, abs_tol=1e-3):
        raise ValueError(f"{what} shares must add up to 1, not {total:g}")


class Decline(_Strict):
    code: str = Field(min_length=1)
    advice_code: str | None = None
    share: Share = Field(gt=0, le=1)


class Amount(_Strict):
    amount: int = Field(gt=0, description="invoice amount due, minor units")
    share: Share = Field(gt=0, le=1)


class Population(_Strict):
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")
    # The customers' country (ISO 3166 alpha-2), for the holidays of payday steps; None: paydays
    # skip weekends only.
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    amounts: tuple[Amount, ...] = Field(min_length=1)
    declines: tuple[Decline, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _mixes(self) -> Population:
        _shares_sum_to_one([a.share for a in self.amounts], "amounts")
        _shares_sum_to_one([d.share for d in self.declines], "declines")
        return self


class DayFactor(_Strict):
    from_day: float = Field(ge=0)
    factor: float = Field(ge=0, le=10)


class Retry(_Strict):
    # Chance that the first retry of the same card succeeds, by first decline code; `default`
    # covers every other code. Only soft declines are retried by the engine.
    success: dict[str, float] = Field(min_length=1)
    decay: float = Field(default=1.0, gt=0, le=1, description="each later retry multiplies by this")
    by_day: tuple[DayFactor, ...] = (DayFactor(from_day=0, factor=1.0),)
    becomes_hard: Share = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _valid(self) -> Retry:
        if "default" not in self.success:
            raise ValueError("success needs a `default` entry for codes not listed")
        for code, chance in self.success.items():
            if not 0 <= chance <= 1:
                raise ValueError(f"success.{code} must be between 0 and 1, not {chance:g}")
        days = [d.from_day for d in self.by_day]
        if days != sorted(days) or days[0] != 0:
            raise ValueError("by_day must start at from_day 0 and be in increasing order")
        return self

    def chance(self, code: str, attempt: int, day: float) -> float:
        base = self.success.get(code, self.success["default"])
        factor = self.by_day[0].factor
        for step in self.by_day:
            if step.from_day > day:
                break
            factor = step.factor
        return min(base * self.decay ** (attempt - 1) * factor, 1.0)


class Customer(_Strict):
    # Chance that one message makes the customer act (pay or give a new card), by its level;
    # `ask` is the immediate request after a decline that needs a new card or authentication.
    act_on_message: dict[MessageLevel, Share] = Field(min_length=1)
    pay_share: Share = Field(ge=0, le=1, description="of those who act, share who pay at once")
    act_after: Duration = Field(description="mean delay between a message and the action")
    spontaneous_per_day: float = Field(default=0.0, ge=0, le=1)
    new_card_success: Share = Field(ge=0, le=1)
    reply_rate: Share = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _chances(self) -> Customer:
        for level, chance in self.act_on_message.items():
            if not 0 <= chance <= 1:
                raise ValueError(f"act_on_message.{level} must be between 0 and 1, not {chance:g}")
        return self


class SimulationModel(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    population: Population
    retry: Retry
    customer: Customer


def load_model(path: str | Path = DEFAULT_MODEL) -> SimulationModel:
    path = Path(path)
    raw = read_yaml(path, "model", ModelError)
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: a simulation model must be a YAML mapping")
    try:
        return SimulationModel.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{path}: invalid simulation model: {problems(exc)}") from exc
