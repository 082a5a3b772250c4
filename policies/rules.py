"""Segments: which policy a case gets, from an ordered list of rules (`policies/rules.yaml`).

The first rule whose conditions all hold wins; a rule without conditions is the default and
must come last. Loading validates the file like a policy file (errors name the file, the rule
and the field). Evaluation is pure and reads no clock: `CaseFacts.now` is an input, so the
opening activity and `dunning explain` get the same answer from the same facts.

An amount condition (`amount_at_least` / `amount_below`) is per currency. When every other
condition of a rule holds and its amount mapping has no entry for the case's currency,
evaluation raises `RuleError` naming the rule, the field and the currency: guessing either way
would put a large invoice in the wrong segment without anyone noticing.

A rule may name an experiment (policies/experiments.py), defined under `experiments:` in the
same file or in a file that key names; naming one that is not defined is a load error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from policies.durations import Duration, format_duration
from policies.experiments import Experiment, load_experiments
from policies.loader import POLICY_DIR, PolicyError, load_policy, problems, read_yaml
from policies.schema import DeclineClass


class RulesError(ValueError):
    """The rules file is missing, is not YAML, or a rule is invalid (names file, rule, field)."""


class RuleError(ValueError):
    """A rule cannot decide a case (an amount condition without the case's currency)."""


def _listed(value: object) -> object:
    # `currency: eur` reads naturally for one value; it means the same as `[eur]`.
    return [value] if isinstance(value, str) else value


def _cased(upper: bool) -> Callable[[object], object]:
    def convert(value: object) -> object:
        value = _listed(value)
        if not isinstance(value, list):
            return value
        return [str(v).upper() if upper else str(v).lower() for v in value]

    return convert


def _lower_keys(value: object) -> object:
    # Stripe sends currencies in lower case; `EUR: 50000` in a file should still count.
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else value


Ids = Annotated[tuple[str, ...], BeforeValidator(_listed), Field(min_length=1)]
Currencies = Annotated[tuple[str, ...], BeforeValidator(_cased(upper=False)), Field(min_length=1)]
Countries = Annotated[tuple[str, ...], BeforeValidator(_cased(upper=True)), Field(min_length=1)]
Amounts = Annotated[
    dict[Annotated[str, Field(pattern=r"^[a-z]{3}$")], Annotated[int, Field(ge=0)]],
    BeforeValidator(_lower_keys),
    Field(min_length=1),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorFailures(_Strict):
    count: int = Field(ge=1)
    within: Duration


class Rule(_Strict):
    name: str | None = Field(default=None, min_length=1)
    policy: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    experiment: str | None = Field(default=None, min_length=1)
    plan: Ids | None = None
    price: Ids | None = None
    currency: Currencies | None = None
    country: Countries | None = None
    decline_class: Annotated[tuple[DeclineClass, ...], BeforeValidator(_listed)] | None = None
    customer_age_at_least: Duration | None = None
    prior_failures_at_least: PriorFailures | None = None
    metadata: dict[str, str] | None = Field(default=None, min_length=1)
    amount_at_least: Amounts | None = None
    amount_below: Amounts | None = None

    @property
    def is_default(self) -> bool:
        return all(getattr(self, name) is None for name in CONDITIONS)


# Every field but what the rule names is a condition.
CONDITIONS = tuple(n for n in Rule.model_fields if n not in ("name", "policy", "experiment"))


@dataclass(frozen=True)
class RuleSet:
    path: Path
    rules: tuple[Rule, ...]
    experiments: Mapping[str, Experiment] = field(default_factory=dict)

    @property
    def windows(self) -> frozenset[timedelta]:
        """The prior-failure windows the rules ask about, for callers that precompute counts."""
        return frozenset(
            r.prior_failures_at_least.within for r in self.rules if r.prior_failures_at_least
        )


def label(index: int, rule: Rule) -> str:
    return f"rules[{index}]" + (f" ({rule.name})" if rule.name else "")


def load_rules(path: str | Path, policy_dir: str | Path = POLICY_DIR) -> RuleSet:
    """Read and check a rules file; every policy it names must load from `policy_dir`."""
    path = Path(path)
    raw = read_yaml(path, "rules", RulesError)
    shaped = isinstance(raw, dict) and set(raw) - {"experiments"} == {"rules"}
    if not shaped or not isinstance(raw["rules"], list):
        raise RulesError(f"{path}: a rules file is a mapping: `rules:`, a list, and `experiments:`")
    experiments = load_experiments(raw.get("experiments", []), path, Path(policy_dir), RulesError)
    if not raw["rules"]:
        raise RulesError(f"{path}: rules: the list is empty; it needs at least a default rule")
    rules: list[Rule] = []
    for index, item in enumerate(raw["rules"]):
        name = item.get("name") if isinstance(item, dict) else None
        where = f"{path}: rules[{index}]" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(item, dict):
            raise RulesError(f"{where}: a rule must be a mapping")
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            raise RulesError(f"{where}: {problems(exc, top='(rule)')}") from exc
        _check_rule(rule, where, Path(policy_dir), experiments)
        rules.append(rule)
    for index, rule in enumerate(rules[:-1]):
        if rule.is_default:
            raise RulesError(
                f"{path}: {label(index, rule)}: has no conditions, so it matches every case and"
                " the rules after it could never match: the default rule must be last"
            )
    if not rules[-1].is_default:
        last = label(len(rules) - 1, rules[-1])
        raise RulesError(
            f"{path}: {last}: the last rule must be the default (a rule without conditions),"
            " so that every case gets a policy"
        )
    return RuleSet(path=path, rules=tuple(rules), experiments=experiments)


def _check_rule(
    rule: Rule, where: str, policy_dir: Path, experiments: Mapping[str, Experiment]
) -> None:
    try:
        load_policy(policy_dir / f"{rule.policy}.yaml")
    except PolicyError as exc:
        raise RulesError(f"{where}: policy: {exc}") from None
    if rule.experiment is not None and rule.experiment not in experiments:
        known = ", ".join(sorted(experiments)) or "none"
        raise RulesError(f"{where}: experiment: no experiment {rule.experiment} (known: {known})")
    # With a currency condition, an amount mapping that misses one of its currencies could
    # never be decided: that is known at load time, so say it there.
    for field_name in ("amount_at_least", "amount_below"):
        amounts = getattr(rule, field_name)
        missing = sorted(set(rule.currency or ()) - set(amounts or {})) if amounts else []
        if missing:
            raise RulesError(
                f"{where}: {field_name}: no amount for {', '.join(missing)}, a currency the rule"
                " matches"
            )


@dataclass(frozen=True)
class CaseFacts:
    """What rules may look at. `prior_failures(within)` counts the customer's earlier failed
    invoices in [now - within, now); a precomputed mapping works through `.get`."""

    now: datetime
    amount: int
    currency: str
    decline_class: DeclineClass = DeclineClass.SOFT
    plans: frozenset[str] = frozenset()
    prices: frozenset[str] = frozenset()
    country: str | None = None
    customer_created_at: datetime | None = None
    prior_failures: Callable[[timedelta], int] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Miss:
    index: int
    name: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    index: int
    name: str | None
    policy: str
    experiment: str | None
    misses: tuple[Miss, ...]


def _ids(ids: frozenset[str]) -> str:
    return ", ".join(sorted(ids)) or "none"


def _failures(rule: Rule, facts: CaseFacts) -> list[str]:
    """Why each condition other than the amounts fails (empty: they all hold)."""
    out: list[str] = []
    if rule.plan is not None and not facts.plans & set(rule.plan):
        out.append(f"plan {_ids(facts.plans)} is not one of {', '.join(rule.plan)}")
    if rule.price is not None and not facts.prices & set(rule.price):
        out.append(f"price {_ids(facts.prices)} is not one of {', '.join(rule.price)}")
    currency = facts.currency.lower()
    if rule.currency is not None and currency not in rule.currency:
        out.append(f"currency {currency} is not one of {', '.join(rule.currency)}")
    country = facts.country.upper() if facts.country else None
    if rule.country is not None and country not in rule.country:
        out.append(f"country {country or 'unknown'} is not one of {', '.join(rule.country)}")
    if rule.decline_class is not None and facts.decline_class not in rule.decline_class:
        wanted = ", ".join(c.value for c in rule.decline_class)
        out.append(f"decline class {facts.decline_class.value} is not one of {wanted}")
    if rule.customer_age_at_least is not None:
        least = format_duration(rule.customer_age_at_least)
        if facts.customer_created_at is None:
            out.append(f"customer age is unknown (needs at least {least})")
        else:
            age = facts.now - facts.customer_created_at
            if age < rule.customer_age_at_least:
                out.append(f"customer age {format_duration(age)} is under {least}")
    if rule.prior_failures_at_least is not None:
        wanted_count = rule.prior_failures_at_least.count
        window = format_duration(rule.prior_failures_at_least.within)
        if facts.prior_failures is None:
            out.append(f"prior failures are unknown (needs {wanted_count} within {window})")
        else:
            count = facts.prior_failures(rule.prior_failures_at_least.within)
            if count < wanted_count:
                out.append(f"{count} prior failure(s) within {window}, fewer than {wanted_count}")
    for key, wanted in sorted((rule.metadata or {}).items()):
        actual = facts.metadata.get(key)
        if actual != wanted:
            shown = "is not set" if actual is None else f"is {actual!r}"
            out.append(f"metadata {key} {shown}, not {wanted!r}")
    return out


def _amount_failures(index: int, rule: Rule, facts: CaseFacts) -> list[str]:
    currency = facts.currency.lower()
    out: list[str] = []
    for field_name, amounts in (
        ("amount_at_least", rule.amount_at_least),
        ("amount_below", rule.amount_below),
    ):
        if amounts is None:
            continue
        if currency not in amounts:
            raise RuleError(
                f"{label(index, rule)}: {field_name} has no amount for {currency}: add"
                f" {currency} to it, or a `currency:` condition that leaves {currency} out"
            )
        limit = amounts[currency]
        if field_name == "amount_at_least" and facts.amount < limit:
            out.append(f"amount {facts.amount} {currency} is below {limit}")
        if field_name == "amount_below" and facts.amount >= limit:
            out.append(f"amount {facts.amount} {currency} is not below {limit}")
    return out


def rule_reasons(index: int, rule: Rule, facts: CaseFacts) -> list[str]:
    """Why `rule` does not match (empty: it matches); RuleError when it cannot decide."""
    failures = _failures(rule, facts)
    # Amounts are judged only once everything else holds: a rule for another plan or country
    # is not this case's segment, whatever currency its amounts are in.
    return failures or _amount_failures(index, rule, facts)


def evaluate(rules: RuleSet | tuple[Rule, ...], facts: CaseFacts) -> Match:
    """The first rule whose conditions all hold, and why each earlier rule did not."""
    listed = rules.rules if isinstance(rules, RuleSet) else rules
    misses: list[Miss] = []
    for index, rule in enumerate(listed):
        reasons = rule_reasons(index, rule, facts)
        if not reasons:
            return Match(index, rule.name, rule.policy, rule.experiment, tuple(misses))
        misses.append(Miss(index, rule.name, tuple(reasons)))
    # load_rules guarantees a last default rule; a hand-built list may lack one.
    raise RuleError("no rule matched: the rules need a default rule (no conditions) last")
