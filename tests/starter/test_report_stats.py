"""The report's statistics against statsmodels and scipy (dev dependencies, tests only) and
against published values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from starter.support.report_by import GroupRow
from starter.support.report_experiment import compare
from starter.support.report_stats import (
    Moments,
    ProportionTest,
    cohens_h,
    sample_size,
    two_proportions,
    verdict,
    welch,
    wilson,
)

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857–872, Table II, the score (Wilson) method.
NEWCOMBE = [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)]


@pytest.mark.parametrize(("x", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_the_published_table(x: int, n: int, low: float, high: float) -> None:
    found = wilson(x, n)
    assert found is not None
    assert (round(found.low, 4), round(found.high, 4)) == (low, high)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_statsmodels(sample: tuple[int, int]) -> None:
    x, n = sample
    found = wilson(x, n)
    low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert found is not None
    assert (found.low, found.high) == (
        pytest.approx(low, abs=1e-12),
        pytest.approx(high, abs=1e-12),
    )


def test_no_cases_no_interval() -> None:
    assert wilson(0, 0) is None and two_proportions(0, 0, 1, 2) is None


@given(
    st.integers(2, 3000).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))),
    st.integers(2, 3000).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))),
)
def test_two_proportions_match_statsmodels(a: tuple[int, int], b: tuple[int, int]) -> None:
    found = two_proportions(a[0], a[1], b[0], b[1])
    z, p = proportions_ztest([b[0], a[0]], [b[1], a[1]])
    low, high = confint_proportions_2indep(b[0], b[1], a[0], a[1], method="wald")
    assert found is not None and found.z is not None and found.p_value is not None
    assert found.z == pytest.approx(z, rel=1e-9)
    assert found.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert found.interval.low == pytest.approx(low, abs=1e-12)
    assert found.interval.high == pytest.approx(high, abs=1e-12)


def test_two_proportions_textbook_example() -> None:
    # 120 of 1000 against 150 of 1000: z = 1.963, p = 0.0496 (pooled two-proportion z-test).
    found = two_proportions(120, 1000, 150, 1000)
    assert found is not None and found.z is not None and found.p_value is not None
    assert (round(found.z, 3), round(found.p_value, 4)) == (1.963, 0.0496)


@given(st.floats(0.01, 0.9), st.sampled_from([0.01, 0.02, 0.05, 0.1]), st.sampled_from([0.8, 0.9]))
def test_sample_size_matches_statsmodels(baseline: float, effect: float, power: float) -> None:
    target = baseline + effect if baseline + effect <= 1 else baseline - effect
    h = abs(proportion_effectsize(target, baseline))
    expected = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=power, ratio=1)
    assert abs(cohens_h(baseline, target)) == pytest.approx(h)
    assert sample_size(baseline, effect, power=power) == int(np.ceil(expected - 1e-6))


def test_welch_matches_scipy_on_raw_revenue() -> None:
    rng = np.random.default_rng(7)
    control = np.where(rng.random(400) < 0.5, rng.integers(500, 5000, 400), 0).astype(float)
    arm = np.where(rng.random(300) < 0.6, rng.integers(500, 5000, 300), 0).astype(float)

    def moments(values: np.ndarray) -> Moments:  # type: ignore[type-arg]
        return Moments(n=len(values), total=values.sum(), squares=(values**2).sum())

    found = welch(moments(control), moments(arm))
    expected = scipy_stats.ttest_ind(arm, control, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert found.difference == pytest.approx(arm.mean() - control.mean())
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert found.degrees_of_freedom == pytest.approx(expected.df, rel=1e-9)
    assert found.interval is not None
    assert (found.interval.low, found.interval.high) == (
        pytest.approx(interval.low, rel=1e-9),
        pytest.approx(interval.high, rel=1e-9),
    )


def _test(difference: float, p_value: float) -> ProportionTest:
    return ProportionTest(
        difference=difference, interval={"low": 0, "high": 0}, z=1.0, p_value=p_value
    )


def test_no_verdict_before_both_arms_reach_the_size() -> None:
    assert verdict(_test(0.2, 1e-9), 999, 5000, needed=1000) == "not_enough_data"
    assert verdict(_test(0.2, 1e-9), 1000, 1000, needed=1000) == "better"
    assert verdict(_test(-0.2, 0.01), 1000, 1000, needed=1000) == "worse"
    assert verdict(_test(0.2, 0.06), 1000, 1000, needed=1000) == "no_detectable_difference"


def _arm(key: str, finished: int, recovered: int) -> GroupRow:
    return GroupRow(
        key=key, cases=finished, finished=finished, open=0, recovered=recovered,
        recovery_rate=recovered / finished, recovery_interval=None, revenue={},
        median_seconds_to_recover=None, p90_seconds_to_recover=None, messages_per_case=None,
        charges_per_case=None, churned=0, churn_rate=None,
    )  # fmt: skip


def test_the_verdict_once_the_arms_are_large_enough() -> None:
    # The control recovers exactly 40% in both: the size needed is the same.
    needed = sample_size(0.4, 0.05)
    n = 5 * -(-needed // 5)
    rows = [_arm("control", n, n * 2 // 5), _arm("B", n, int(0.47 * n))]
    small = [_arm("control", 1000, 400), rows[1]]

    (arm,) = compare(rows, "e", min_effect=0.05).arms
    (early,) = compare(small, "e", min_effect=0.05).arms
    assert (arm.verdict, arm.verdict_words, arm.still_needed) == (
        "better",
        "B better than control",
        0,
    )
    assert arm.rate is not None and arm.rate.p_value is not None and arm.rate.p_value < 0.05
    assert (early.verdict, early.needed_per_arm, early.still_needed) == (
        "not_enough_data",
        needed,
        needed - 1000,
    )
    # --control B: the other arm is measured against B (a 47% baseline needs more cases).
    (flipped,) = compare(rows, "e", control="B", min_effect=0.05).arms
    assert flipped.arm == "control" and flipped.needed_per_arm == sample_size(
        rows[1].recovery_rate or 0, 0.05
    )
    assert flipped.rate is not None and flipped.rate.difference < 0
