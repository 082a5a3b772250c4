"""What the console's report page shows: the window's recovery report, the grouped tables
(every grouping of `report --by`) under the page's filters, an experiment's comparison, and
the charts. The filters are query parameters, so a filtered page can be bookmarked."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from starter.support.report import RecoveryReport, compute_report
from starter.support.report_by import DIMENSIONS, Filters, compute_by
from starter.support.report_charts import Charts, charts
from starter.support.report_experiment import GroupedReport, NoControl, compare

DEFAULT_DAYS = 30
DEFAULT_EFFECT = 0.05
N = TypeVar("N", int, float)
TEXT_FILTERS = ("segment", "policy", "variant", "experiment")


class ReportPage(BaseModel):
    report: RecoveryReport
    grouped: GroupedReport
    charts: Charts
    problem: str | None = None


class PageQuery(BaseModel):
    days: int = DEFAULT_DAYS
    segment: str = ""
    policy: str = ""
    variant: str = ""
    experiment: str = ""
    control: str = ""
    min_effect: float = DEFAULT_EFFECT
    since: datetime | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> PageQuery:
        """What the form sent; a value that does not parse falls back to its default."""
        text = {name: params.get(name, "").strip()[:100] for name in (*TEXT_FILTERS, "control")}
        days, effect = (
            _number(params, "days", int, DEFAULT_DAYS),
            _number(params, "min_effect", float, 0.0),
        )
        since = datetime.now(UTC) - timedelta(days=days) if days > 0 else None
        effect = effect if 0 < effect < 1 else DEFAULT_EFFECT
        return cls(days=days, min_effect=effect, since=since, **text)

    @property
    def filters(self) -> Filters:
        chosen = {name: getattr(self, name) or None for name in TEXT_FILTERS}
        return Filters(since=self.since, **chosen)

    def compute(self, session: Session) -> ReportPage:
        filters = self.filters
        report = compute_report(session, self.since)
        tables = compute_by(session, list(DIMENSIONS), filters)
        grouped = GroupedReport(since=self.since, until=None, filters=filters, tables=tables)
        by = {table.by: table for table in tables}
        problem = None
        if filters.experiment is not None:
            try:
                grouped.comparison = compare(
                    by["variant"].rows, filters.experiment, self.control or None, self.min_effect
                )
            except NoControl as err:
                problem = str(err)
        drawn = charts(session, filters, by["step"], by["channel"])
        return ReportPage(report=report, grouped=grouped, charts=drawn, problem=problem)


def _number(params: Mapping[str, str], name: str, kind: Callable[[str], N], default: N) -> N:
    try:
        return kind(params.get(name, "").strip())
    except ValueError:
        return default
