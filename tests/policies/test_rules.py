"""Segment rules: loading errors name file, rule and field; evaluation is first match wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from policies.loader import POLICY_DIR
from policies.rules import (
    CaseFacts,
    Rule,
    RuleError,
    RulesError,
    evaluate,
    load_rules,
)
from policies.schema import DeclineClass

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_rules_load_and_give_everyone_the_default_policy() -> None:
    rules = load_rules(POLICY_DIR / "rules.yaml")
    match = evaluate(rules, CaseFacts(now=NOW, amount=1200, currency="eur"))
    assert (match.index, match.policy, match.experiment, match.misses) == (0, "default", None, ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n- {name: big, policy: default, amount_at_least: {eur: -1}}\n"
            "- {policy: default}\n",
            "rules[0] (big): amount_at_least.eur: Input should be greater than or equal to 0",
        ),
        (
            "rules:\n- {policy: default}\n- {name: vip, policy: nope, plan: [p]}\n",
            "rules[1] (vip): policy: ",
        ),
        (
            "rules:\n- {name: x, policy: default, decline_class: sometimes}\n- {policy: default}\n",
            "rules[0] (x): decline_class.0: Input should be 'soft'",
        ),
        (
            "rules:\n- {policy: default, colour: red}\n- {policy: default}\n",
            "rules[0]: colour: Extra inputs are not permitted",
        ),
        (
            "rules:\n- {policy: default, prior_failures_at_least: {count: 2, within: soon}}\n"
            "- {policy: default}\n",
            "rules[0]: prior_failures_at_least.within: Value error, invalid duration 'soon'",
        ),
        (
            "rules:\n- {policy: default, currency: [eur, usd], amount_below: {eur: 5}}\n"
            "- {policy: default}\n",
            "rules[0]: amount_below: no amount for usd",
        ),
    ],
)
def test_validation_errors_name_file_rule_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(err.value).startswith(f"{path}: {expected}")


def test_the_default_must_be_last_and_must_exist(tmp_path: Path) -> None:
    early = write(tmp_path, "rules:\n- {name: all, policy: default}\n- {policy: demo, plan: p}\n")
    with pytest.raises(RulesError, match=r"rules\[0\] \(all\): .*the default rule must be last"):
        load_rules(early)
    missing = write(tmp_path, "rules:\n- {policy: default, currency: eur}\n")
    with pytest.raises(RulesError, match=r"rules\[0\]: the last rule must be the default"):
        load_rules(missing)
    with pytest.raises(RulesError, match="the list is empty"):
        load_rules(write(tmp_path, "rules: []\n"))
    with pytest.raises(RulesError, match="rules file not found"):
        load_rules(tmp_path / "absent.yaml")


def test_a_currency_no_amount_rule_covers_is_an_error_naming_rule_and_currency() -> None:
    rules = (
        Rule(name="big", policy="default", amount_at_least={"eur": 50000}),
        Rule(policy="default"),
    )
    with pytest.raises(
        RuleError, match=r"rules\[0\] \(big\): amount_at_least has no amount for usd"
    ):
        evaluate(rules, CaseFacts(now=NOW, amount=1200, currency="USD"))
    # A rule whose other conditions already fail is not the case's segment: no error.
    fenced = (Rule(policy="demo", plan=("p",), amount_at_least={"eur": 1}), Rule(policy="default"))
    assert evaluate(fenced, CaseFacts(now=NOW, amount=1, currency="usd")).policy == "default"


def test_reasons_say_why_each_earlier_rule_did_not_match() -> None:
    rules = (
        Rule(name="big", policy="demo", amount_at_least={"eur": 50000}),
        Rule(name="old", policy="demo", customer_age_at_least=180 * DAY),
        Rule(name="vip", policy="demo", metadata={"segment": "enterprise"}, country=("DE",)),
        Rule(name="late", policy="demo", prior_failures_at_least={"count": 2, "within": "365d"}),
        Rule(name="fallback", policy="default", experiment="exp"),
    )
    facts = CaseFacts(
        now=NOW,
        amount=1200,
        currency="eur",
        customer_created_at=NOW - 30 * DAY,
        country="fr",
        prior_failures=lambda within: 1 if within == 365 * DAY else 99,
    )
    match = evaluate(rules, facts)
    assert (match.index, match.name, match.policy, match.experiment) == (
        4,
        "fallback",
        "default",
        "exp",
    )
    assert [m.reasons for m in match.misses] == [
        ("amount 1200 eur is below 50000",),
        ("customer age 30d is under 180d",),
        ("country FR is not one of DE", "metadata segment is not set, not 'enterprise'"),
        ("1 prior failure(s) within 365d, fewer than 2",),
    ]


# --- first match wins, against an independent reading of each condition -------------------

CURRENCIES = ["eur", "usd"]
conditions = st.fixed_dictionaries(
    {},
    optional={
        "plan": st.lists(st.sampled_from(["p1", "p2"]), min_size=1, max_size=2),
        "currency": st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=2),
        "country": st.lists(st.sampled_from(["DE", "FR"]), min_size=1, max_size=2),
        "decline_class": st.lists(st.sampled_from(list(DeclineClass)), min_size=1, max_size=2),
        "customer_age_at_least": st.integers(0, 400).map(lambda d: f"{d}d"),
        "prior_failures_at_least": st.fixed_dictionaries(
            {"count": st.integers(1, 4), "within": st.sampled_from(["30d", "365d"])}
        ),
        "metadata": st.dictionaries(
            st.sampled_from(["segment", "risk"]), st.sampled_from(["a", "b"]), min_size=1
        ),
        # Both currencies always covered: the not-covered case has its own test above.
        "amount_at_least": st.fixed_dictionaries({c: st.integers(0, 3000) for c in CURRENCIES}),
        "amount_below": st.fixed_dictionaries({c: st.integers(0, 3000) for c in CURRENCIES}),
    },
)
rule_lists = st.lists(conditions.map(lambda c: Rule(policy="demo", **c)), max_size=6).map(
    lambda rules: (*rules, Rule(policy="default"))
)
facts_strategy = st.builds(
    CaseFacts,
    now=st.just(NOW),
    amount=st.integers(0, 3000),
    currency=st.sampled_from(CURRENCIES),
    decline_class=st.sampled_from(list(DeclineClass)),
    plans=st.frozensets(st.sampled_from(["p1", "p2", "p3"]), max_size=2),
    country=st.sampled_from([None, "DE", "FR", "US"]),
    customer_created_at=st.integers(0, 400).map(lambda d: NOW - d * DAY),
    prior_failures=st.tuples(st.integers(0, 5), st.integers(0, 5)).map(
        lambda n: lambda within: n[0] if within <= 30 * DAY else n[0] + n[1]
    ),
    metadata=st.dictionaries(st.sampled_from(["segment", "risk"]), st.sampled_from(["a", "b"])),
)


def holds(rule: Rule, f: CaseFacts) -> bool:
    """Each condition read straight from the spec, without the evaluator's code."""
    assert f.customer_created_at is not None and f.prior_failures is not None
    checks = [
        rule.plan is None or any(p in f.plans for p in rule.plan),
        rule.currency is None or f.currency in rule.currency,
        rule.country is None or f.country in rule.country,
        rule.decline_class is None or f.decline_class in rule.decline_class,
        rule.customer_age_at_least is None
        or f.now - f.customer_created_at >= rule.customer_age_at_least,
        rule.prior_failures_at_least is None
        or f.prior_failures(rule.prior_failures_at_least.within)
        >= rule.prior_failures_at_least.count,
        rule.metadata is None or all(f.metadata.get(k) == v for k, v in rule.metadata.items()),
        rule.amount_at_least is None or f.amount >= rule.amount_at_least[f.currency],
        rule.amount_below is None or f.amount < rule.amount_below[f.currency],
    ]
    return all(checks)


# No deadline: a busy CI machine must not turn a slow example into a failure.
@hyp_settings(max_examples=200, deadline=None)
@given(rule_lists, facts_strategy)
def test_the_match_is_the_first_rule_whose_conditions_all_hold(
    rules: tuple[Rule, ...], facts: CaseFacts
) -> None:
    match = evaluate(rules, facts)
    expected = next(i for i, rule in enumerate(rules) if holds(rule, facts))
    assert match.index == expected
    assert match.policy == rules[expected].policy
    assert [m.index for m in match.misses] == list(range(expected))
    assert all(m.reasons for m in match.misses)


@hyp_settings(max_examples=200, deadline=None)
@given(facts_strategy)
def test_a_default_rule_always_matches(facts: CaseFacts) -> None:
    assert evaluate((Rule(policy="default", experiment="e"),), facts).experiment == "e"
