"""The grouped report with, for an experiment, each arm against the control.

The control is the arm named with `control` (`--control ARM`), else the arm called "control".
Per other arm: the difference in recovery rate (two-proportion z-test and interval), the
difference in revenue per finished case per currency (Welch), the finished cases each arm
needs for the minimum detectable effect, how many are still missing, and the verdict, which
stays "not enough data" until both arms have reached that size (report_stats explains why).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from starter.support import report_stats as stats
from starter.support.report_by import Dimension, Filters, GroupRow, GroupTable, compute_by

CONTROL = "control"
# With no finished control case yet the baseline is unknown: 0.5 needs the most cases.
UNKNOWN_BASELINE = 0.5


class ArmComparison(BaseModel):
    arm: str
    finished: int
    recovery_rate: float | None
    rate: stats.ProportionTest | None = Field(description="arm − control, recovery rate")
    revenue_per_case: dict[str, stats.MeanDifference] = Field(
        description="arm − control, revenue per finished case, per currency (minor units)"
    )
    needed_per_arm: int = Field(description="finished cases per arm for the minimum effect")
    still_needed: int = Field(description="finished cases the smaller of the two arms lacks")
    verdict: stats.Verdict
    verdict_words: str


class ExperimentComparison(BaseModel):
    experiment: str | None
    control: str
    control_finished: int
    control_rate: float | None
    min_effect: float = Field(description="absolute difference in recovery rate")
    alpha: float
    power: float
    arms: list[ArmComparison]


class GroupedReport(BaseModel):
    since: datetime | None
    until: datetime | None
    filters: Filters
    tables: list[GroupTable]
    comparison: ExperimentComparison | None = None


class NoControl(ValueError):
    """The experiment has no arm to compare against."""


def compute_grouped(
    session: Session,
    by: list[Dimension],
    filters: Filters,
    control: str | None = None,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
) -> GroupedReport:
    """`by` tables; with an experiment, also the arms compared (`variant` added if missing)."""
    wanted: list[Dimension] = list(by) or ["variant"]
    if filters.experiment is not None and "variant" not in wanted:
        wanted.append("variant")
    tables = compute_by(session, wanted, filters)
    comparison = None
    if filters.experiment is not None:
        arms = next(table.rows for table in tables if table.by == "variant")
        comparison = compare(arms, filters.experiment, control, min_effect, alpha, power)
    return GroupedReport(
        since=filters.since,
        until=filters.until,
        filters=filters,
        tables=tables,
        comparison=comparison,
    )


def compare(
    rows: list[GroupRow],
    experiment: str | None,
    control: str | None = None,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
) -> ExperimentComparison:
    arms = {str(row.key): row for row in rows if row.key is not None}
    name = control or CONTROL
    if name not in arms:
        known = ", ".join(sorted(arms)) or "none yet"
        raise NoControl(
            f"no arm {name!r} in experiment {experiment!r} (arms: {known});"
            " name the control arm with --control ARM"
        )
    base = arms[name]
    baseline = base.recovery_rate if base.recovery_rate is not None else UNKNOWN_BASELINE
    needed = stats.sample_size(baseline, min_effect, alpha, power)
    return ExperimentComparison(
        experiment=experiment,
        control=name,
        control_finished=base.finished,
        control_rate=base.recovery_rate,
        min_effect=min_effect,
        alpha=alpha,
        power=power,
        arms=[_arm(base, row, needed, alpha) for key, row in sorted(arms.items()) if key != name],
    )


def _arm(base: GroupRow, row: GroupRow, needed: int, alpha: float) -> ArmComparison:
    test = stats.two_proportions(base.recovered, base.finished, row.recovered, row.finished)
    revenue = {
        currency: stats.welch(
            base.revenue_moments.get(currency, stats.Moments(n=0, total=0, squares=0)),
            row.revenue_moments.get(currency, stats.Moments(n=0, total=0, squares=0)),
        )
        for currency in sorted(set(base.revenue_moments) | set(row.revenue_moments))
    }
    verdict = stats.verdict(test, base.finished, row.finished, needed, alpha)
    return ArmComparison(
        arm=str(row.key),
        finished=row.finished,
        recovery_rate=row.recovery_rate,
        rate=test,
        revenue_per_case=revenue,
        needed_per_arm=needed,
        still_needed=max(0, needed - min(base.finished, row.finished)),
        verdict=verdict,
        verdict_words=words(verdict, str(row.key), str(base.key)),
    )


def words(verdict: stats.Verdict, arm: str, control: str) -> str:
    if verdict == "not_enough_data":
        return "not enough data"
    if verdict == "no_detectable_difference":
        return f"no detectable difference between {arm} and {control}"
    return f"{arm} {verdict} than {control}"
