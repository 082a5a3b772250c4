"""Which policy a new case gets: the segment rules (DUNNING_RULES), decided once, at opening.

The opening activity's result is recorded in the case's history, so a running case keeps the
segment and policy it opened with, whatever the rules file says later. A rule that cannot
decide (an amount rule without the case's currency) is a misconfiguration to fix, so it fails
the opening loudly (the case ends as `error` with the reason) rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError

from models.store import Ledger
from policies import engine
from policies.case_facts import facts_from_stripe
from policies.experiments import assign
from policies.loader import PolicyError, cached_policy, resolve_policy_path
from policies.rules import RuleError, RuleSet, evaluate
from policies.schema import Policy

MAX_REASON = 500


@dataclass(frozen=True)
class Segment:
    policy: str
    name: str
    reason: str
    experiment: str | None
    # The experiment arm, and the template variant its messages use (None: base templates).
    variant: str | None = None
    message_variant: str | None = None

    def recorded(self) -> dict[str, str | None]:
        """The opening result's fields (so history and the ledger keep them)."""
        return {
            "segment": self.name,
            "segment_reason": self.reason,
            "experiment": self.experiment,
            "variant": self.variant,
        }


def policy_named(name: str | None, default_path: str) -> Policy:
    """A policy by name (policies/<name>.yaml), else the worker's default; a bad file is a
    non-retryable InvalidPolicy failure naming the file and field."""
    try:
        return cached_policy(str(resolve_policy_path(name, default_path)))
    except PolicyError as exc:
        raise ApplicationError(str(exc), type="InvalidPolicy", non_retryable=True) from None


def segment_for(
    rules: RuleSet | None,
    named_policy: str | None,
    default_policy: Policy,
    ledger: Ledger,
    stripe_objects: tuple[Any, Any, Any],
    decline: tuple[str | None, str | None],
    case: tuple[str, str, datetime],
) -> Segment | None:
    """None without rules, or when the start request named its policy. `stripe_objects`:
    (invoice, customer, subscription); `case`: (invoice id, customer id, when it opens). The
    decline is classified with the worker's default policy: no rule has chosen one yet."""
    if rules is None or named_policy:
        return None
    invoice, customer, subscription = stripe_objects
    invoice_id, customer_id, now = case
    decline_class = engine.classify_decline(default_policy, *decline)
    prior = ledger.case_openings(customer_id, exclude_invoice=invoice_id)
    facts = facts_from_stripe(invoice, customer, subscription, decline_class, now, prior)
    try:
        match = evaluate(rules, facts)
    except RuleError as exc:
        message = f"{rules.path}: {exc}"
        raise ApplicationError(message, type="InvalidRules", non_retryable=True) from None
    name = match.name or f"rule {match.index + 1}"
    missed = "; ".join(
        f"{m.name or f'rule {m.index + 1}'}: {', '.join(m.reasons)}" for m in match.misses
    )
    experiment = rules.experiments.get(match.experiment) if match.experiment else None
    drawn = assign(experiment, customer_id) if experiment else None
    # The arm goes before the misses: a long list of misses is what the cap cuts.
    reason = f"matched {name}" + (f"; {drawn.why}" if drawn else "")
    reason += f" (earlier rules missed: {missed})" if missed else ""
    if drawn is None:
        return Segment(match.policy, name, reason[:MAX_REASON], match.experiment)
    return Segment(
        drawn.policy(match.policy),
        name,
        reason[:MAX_REASON],
        # Only a running experiment randomizes: after a stop or a declared winner the case
        # keeps its arm (DunningVariant) but is not one of the experiment's samples.
        drawn.experiment.name if drawn.randomized else None,
        drawn.arm.name,
        drawn.arm.message_variant,
    )
