"""The demo's experiment: `dunning dev` runs its worker under `policies/demo-rules.yaml`, whose
default rule splits every case 50/50 between two arms, so the console shows both side by side.

The demo computes each customer's arm with the worker's own pure assignment
(policies/experiments.py) to print it beside the case, and to add a case or two when chance
has put every demo customer in one arm.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from models.settings import Settings
from policies.experiments import Experiment, assign
from policies.loader import POLICY_DIR
from policies.rules import RulesError, load_rules
from starter.cli import UserError

DEMO_RULES = POLICY_DIR / "demo-rules.yaml"


def demo_experiment(rules_path: str, count: int) -> Experiment | None:
    """The running experiment of the rules' default rule (the one demo cases reach), when
    `count` cases can cover its arms; None without rules or such an experiment."""
    if not rules_path:
        return None
    try:
        rules = load_rules(rules_path)
    except RulesError as err:
        raise UserError(f"bad rules file (DUNNING_RULES): {err}") from None
    name = rules.rules[-1].experiment
    experiment = rules.experiments.get(name) if name else None
    if experiment is None or experiment.status != "running" or count < len(experiment.arms):
        return None
    return experiment


def arm_of(experiment: Experiment, customer: str) -> str:
    return assign(experiment, customer).arm.name


def missing_arms(experiment: Experiment, customers: Iterable[str]) -> list[str]:
    """The arms no customer lands in, in the file's order."""
    found = {arm_of(experiment, customer) for customer in customers}
    return [arm.name for arm in experiment.arms if arm.name not in found]


async def cover(
    settings: Settings,
    count: int,
    customers: list[str],
    another: Callable[[], Awaitable[str]],
    within: float = 30.0,
) -> dict[str, str]:
    """Each demo customer's arm under DUNNING_RULES (empty without an experiment), after
    `another()` added customers until every arm has one (or `within` seconds passed)."""
    experiment = demo_experiment(settings.dunning_rules, count)
    if experiment is None:
        return {}
    deadline = time.monotonic() + within
    while missing_arms(experiment, customers) and time.monotonic() < deadline:
        customers.append(await another())
    return {customer: arm_of(experiment, customer) for customer in customers}
