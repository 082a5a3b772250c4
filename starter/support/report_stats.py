"""The statistics of the report and of an experiment's comparison: pure functions, no I/O.

- A recovery rate's 95% interval is Wilson's score interval: unlike the textbook p ± z·se it
  stays inside [0, 1] and keeps its coverage for small groups and rates near 0 or 1.
- Arm B against the control: the difference in recovery rate with a two-proportion z-test
  (pooled standard error under "no difference") and a Wald interval (unpooled); the difference
  in revenue per finished case with Welch's t interval (unequal variances, Welch–Satterthwaite
  degrees of freedom), from per-arm count, sum and sum of squares.
- The sample size per arm for a chosen minimum detectable effect (absolute, in recovery rate)
  at the given alpha (two-sided) and power, on Cohen's h, solved exactly as statsmodels'
  NormalIndPower does. Until both arms have that many finished cases the verdict is "not
  enough data": looking at a running test at every refresh and stopping at the first p < 0.05
  inflates false winners far beyond 5%, so the size is fixed before any verdict is read.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field
from scipy.optimize import brentq
from scipy.stats import norm
from scipy.stats import t as student_t

Verdict = Literal["not_enough_data", "better", "worse", "no_detectable_difference"]


class Interval(BaseModel):
    low: float
    high: float


class Moments(BaseModel):
    """A sample summarised as count, sum and sum of squares (what SQL can aggregate)."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        # Sample variance (n − 1); clamped: float cancellation can give a tiny negative.
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


class ProportionTest(BaseModel):
    difference: float = Field(description="rate of B − rate of the control")
    interval: Interval = Field(description="Wald interval of the difference")
    z: float | None
    p_value: float | None = Field(description="two-sided; null when both rates are 0 or 1")


class MeanDifference(BaseModel):
    difference: float = Field(description="mean of B − mean of the control")
    interval: Interval | None = Field(description="Welch t interval; null below 2 per arm")
    p_value: float | None
    degrees_of_freedom: float | None


def z_for(confidence: float) -> float:
    return float(norm.ppf(1 - (1 - confidence) / 2))


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval | None:
    if n <= 0:
        return None
    z = z_for(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(low=max(0.0, center - half), high=min(1.0, center + half))


def two_proportions(
    x_control: int, n_control: int, x_b: int, n_b: int, confidence: float = 0.95
) -> ProportionTest | None:
    if n_control <= 0 or n_b <= 0:
        return None
    p_control, p_b = x_control / n_control, x_b / n_b
    difference = p_b - p_control
    z_crit = z_for(confidence)
    se = math.sqrt(p_control * (1 - p_control) / n_control + p_b * (1 - p_b) / n_b)
    interval = Interval(low=difference - z_crit * se, high=difference + z_crit * se)
    pooled = (x_control + x_b) / (n_control + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_b))
    if se0 == 0:
        return ProportionTest(difference=difference, interval=interval, z=None, p_value=None)
    z = difference / se0
    return ProportionTest(
        difference=difference, interval=interval, z=z, p_value=float(2 * norm.sf(abs(z)))
    )


def welch(control: Moments, b: Moments, confidence: float = 0.95) -> MeanDifference:
    difference = b.mean - control.mean
    if control.n < 2 or b.n < 2:
        return MeanDifference(
            difference=difference, interval=None, p_value=None, degrees_of_freedom=None
        )
    a_part, b_part = control.variance / control.n, b.variance / b.n
    se = math.sqrt(a_part + b_part)
    if se == 0:
        point = Interval(low=difference, high=difference)
        return MeanDifference(
            difference=difference, interval=point, p_value=None, degrees_of_freedom=None
        )
    df = (a_part + b_part) ** 2 / (a_part**2 / (control.n - 1) + b_part**2 / (b.n - 1))
    t_crit = float(student_t.ppf(1 - (1 - confidence) / 2, df))
    return MeanDifference(
        difference=difference,
        interval=Interval(low=difference - t_crit * se, high=difference + t_crit * se),
        p_value=float(2 * student_t.sf(abs(difference / se), df)),
        degrees_of_freedom=df,
    )


def cohens_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def sample_size(baseline: float, min_effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Finished cases needed per arm (equal arms) to detect `baseline` → `baseline ±
    min_effect` with a two-sided test. Upwards when there is room, else downwards."""
    if not 0 < min_effect < 1:
        raise ValueError("the minimum effect is an absolute rate difference in (0, 1)")
    target = baseline + min_effect if baseline + min_effect <= 1 else baseline - min_effect
    h = abs(cohens_h(baseline, target))
    z_alpha = z_for(1 - alpha)

    def shortfall(n: float) -> float:
        # Power of the two-sided normal test with n per arm, both tails (as statsmodels).
        shift = h * math.sqrt(n / 2)
        return float(norm.sf(z_alpha - shift) + norm.cdf(-z_alpha - shift)) - power

    upper = 2 * ((z_alpha + float(norm.ppf(power))) / h) ** 2 + 10
    return math.ceil(brentq(shortfall, 1e-6, upper, xtol=1e-9))


def verdict(
    test: ProportionTest | None, n_control: int, n_b: int, needed: int, alpha: float = 0.05
) -> Verdict:
    if test is None or n_control < needed or n_b < needed:
        return "not_enough_data"
    if test.p_value is None or test.p_value >= alpha:
        return "no_detectable_difference"
    return "better" if test.difference > 0 else "worse"
