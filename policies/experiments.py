"""Experiments: arms of a segment rule, each a policy and/or a message variant, with weights.

A rule that names an experiment (`experiment: gentle-reminders`) sends each of its cases to
one arm. Assignment is sticky and pure: the SHA-256 of "experiment-name:customer-id" is read
as a point in [0, 1) and laid over the arms' cumulative weights, so a customer lands in the
same arm for every invoice, on every worker, after every restart (Python's `hash()` is salted
per process, so it would not). Renaming an experiment reshuffles its customers on purpose.

A stopped experiment sends everyone to its control arm; one with a declared winner sends
everyone to the winner. Arms are validated at load like rules: errors name the file, the
experiment and the field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policies.loader import PolicyError, load_policy, problems, read_yaml

NAME = r"^[a-z0-9][a-z0-9_-]*$"


class ExperimentError(ValueError):
    """An experiment is invalid (names the file, the experiment and the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arm(_Strict):
    # Arm and variant names become template file name parts (`reminder.b.subject.j2`) and
    # search attribute values, so they are plain lower-case words.
    name: str = Field(pattern=NAME, max_length=100)
    weight: float = Field(gt=0)
    policy: str | None = Field(default=None, pattern=NAME)
    variant: str | None = Field(default=None, pattern=NAME, max_length=100)
    control: bool = False

    @property
    def message_variant(self) -> str | None:
        """The template variant its messages use: `variant`, else the arm's name; the control
        keeps the base templates unless it names a variant."""
        if self.variant is not None:
            return self.variant
        return None if self.control else self.name


class Experiment(_Strict):
    name: str = Field(pattern=NAME, max_length=100)
    status: Literal["running", "stopped", "winner"] = "running"
    winner: str | None = None
    arms: tuple[Arm, ...] = Field(min_length=2)

    @model_validator(mode="before")
    @classmethod
    def _winner_status(cls, data: Any) -> Any:
        # `status: {winner: b}` reads as what it means; stored as status + winner.
        if isinstance(data, dict) and isinstance(data.get("status"), dict):
            status = data["status"]
            if set(status) != {"winner"}:
                raise ValueError("status: a mapping status is `{winner: ARM}`")
            return {**data, "status": "winner", "winner": status["winner"]}
        return data

    @model_validator(mode="after")
    def _arms(self) -> Experiment:
        names = [arm.name for arm in self.arms]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"arms: arm name(s) {', '.join(twice)} used more than once")
        controls = [arm.name for arm in self.arms if arm.control]
        if len(controls) != 1:
            found = ", ".join(controls) or "none"
            raise ValueError(f"arms: exactly one arm needs `control: true` (found: {found})")
        if self.status == "winner" and self.winner not in names:
            raise ValueError(f"status: winner {self.winner!r} is not an arm ({', '.join(names)})")
        if self.status != "winner" and self.winner is not None:
            raise ValueError("winner: only with `status: {winner: ARM}`")
        return self

    @property
    def control(self) -> Arm:
        return next(arm for arm in self.arms if arm.control)

    def arm(self, name: str) -> Arm:
        return next(arm for arm in self.arms if arm.name == name)


@dataclass(frozen=True)
class Assignment:
    experiment: Experiment
    arm: Arm
    # Where the customer's hash fell in [0, 1); None when the status, not the hash, decided.
    point: float | None

    def policy(self, rule_policy: str) -> str:
        return self.arm.policy or rule_policy

    @property
    def randomized(self) -> bool:
        """Only a running experiment's cases compare arms; after a stop or a declared winner
        everyone gets one arm, which says nothing about the others."""
        return self.point is not None

    @property
    def why(self) -> str:
        name, arm = self.experiment.name, self.arm.name
        if self.experiment.status == "stopped":
            return f"experiment {name} is stopped: everyone gets the control arm {arm}"
        if self.experiment.status == "winner":
            return f"experiment {name} declared arm {arm} the winner: everyone gets it"
        total = sum(a.weight for a in self.experiment.arms)
        shares = ", ".join(f"{a.name} {a.weight / total:.0%}" for a in self.experiment.arms)
        return f"experiment {name}: arm {arm} (customer hash {self.point:.3f}; {shares})"


def hash_point(experiment: str, customer_id: str) -> float:
    """A stable point in [0, 1) for (experiment, customer): the first 8 bytes of SHA-256."""
    digest = hashlib.sha256(f"{experiment}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, customer_id: str) -> Assignment:
    if experiment.status == "stopped":
        return Assignment(experiment, experiment.control, None)
    if experiment.status == "winner" and experiment.winner is not None:
        return Assignment(experiment, experiment.arm(experiment.winner), None)
    point = hash_point(experiment.name, customer_id)
    target = point * sum(arm.weight for arm in experiment.arms)
    cumulative = 0.0
    for arm in experiment.arms:
        cumulative += arm.weight
        if target < cumulative:
            return Assignment(experiment, arm, point)
    # Float rounding can leave a point a hair past the last cumulative weight.
    return Assignment(experiment, experiment.arms[-1], point)


def load_experiments(
    value: object,
    rules_path: Path,
    policy_dir: Path,
    error: type[Exception] = ExperimentError,
) -> dict[str, Experiment]:
    """The `experiments:` of a rules file: a list, or the name of a file (relative to the
    rules file) holding `experiments: [...]`. Every policy an arm names must load. Problems
    raise `error` (the rules loader's own), naming the file, the experiment and the field."""
    path = rules_path
    if isinstance(value, str):
        path = rules_path.parent / value
        raw = read_yaml(path, "experiments", error)
        if not isinstance(raw, dict) or set(raw) != {"experiments"}:
            raise error(f"{path}: an experiments file has one key, `experiments:`")
        value = raw["experiments"]
    if not isinstance(value, list):
        raise error(f"{path}: experiments: a list, or the name of a file with one")
    found: dict[str, Experiment] = {}
    for index, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        where = f"{path}: experiments[{index}]" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(item, dict):
            raise error(f"{where}: an experiment must be a mapping")
        try:
            experiment = Experiment.model_validate(item)
        except ValidationError as exc:
            raise error(f"{where}: {problems(exc, top='(experiment)')}") from exc
        if experiment.name in found:
            raise error(f"{where}: name: {experiment.name} is defined twice")
        for arm_index, arm in enumerate(experiment.arms):
            if arm.policy is None:
                continue
            try:
                load_policy(policy_dir / f"{arm.policy}.yaml")
            except PolicyError as exc:
                raise error(f"{where}: arms.{arm_index}.policy: {exc}") from None
        found[experiment.name] = experiment
    return found
