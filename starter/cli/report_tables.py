"""`dunning report --by`: the grouped tables and the experiment's comparison, as rich tables
or CSV (one line per group and grouping; the comparison is in `--json`)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from starter.cli import console

if TYPE_CHECKING:
    from starter.support.report import RecoveryReport
    from starter.support.report_by import GroupRow
    from starter.support.report_experiment import ExperimentComparison, GroupedReport

TITLES = {
    "segment": "By segment",
    "policy": "By policy",
    "variant": "By experiment arm",
    "decline_code": "By first decline code",
    "channel": "By channel (cases with a message on it while open; they overlap)",
    "step": "By step (cases that reached it; recovered at that step)",
}
NONE_LABELS = {
    "channel": "no message",
    "step": "outside the schedule",
    "decline_code": "(none)",
}
CSV_COLUMNS = [
    "by", "key", "cases", "finished", "open", "recovered", "recovery_rate",
    "recovery_rate_low", "recovery_rate_high", "median_seconds_to_recover",
    "p90_seconds_to_recover", "messages_per_case", "charges_per_case", "churned", "churn_rate",
]  # fmt: skip


def label(by: str, key: Any) -> str:
    if key is None:
        return NONE_LABELS.get(by, "(none)")
    return f"step {key}" if by == "step" else str(key)


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _interval(row: GroupRow) -> str:
    found = row.recovery_interval
    return "–" if found is None else f"{found.low:.1%}–{found.high:.1%}"


def _per(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_grouped(report: GroupedReport) -> None:
    from models.money import plain_amount
    from starter.support.report import duration_words

    headers = ["Group", "Cases", "Open", "Finished", "Recovered", "Rate", "95% interval"]
    headers += ["Revenue", "Median", "p90", "Msgs/case", "Charges/case", "Churn"]
    for table in report.tables:
        shown = Table(title=TITLES[table.by], box=box.SIMPLE_HEAD)
        for name in headers:
            shown.add_column(name, justify="left" if name in ("Group", "Revenue") else "right")
        for row in table.rows:
            revenue = ", ".join(plain_amount(n, c) for c, n in row.revenue.items()) or "–"
            shown.add_row(
                label(table.by, row.key),
                f"{row.cases:,}",
                f"{row.open:,}",
                f"{row.finished:,}",
                f"{row.recovered:,}",
                _percent(row.recovery_rate),
                _interval(row),
                revenue,
                duration_words(row.median_seconds_to_recover),
                duration_words(row.p90_seconds_to_recover),
                _per(row.messages_per_case),
                _per(row.charges_per_case),
                _percent(row.churn_rate),
            )
        console.print(shown)
    if report.comparison is not None:
        render_comparison(report.comparison)


def render_comparison(comparison: ExperimentComparison) -> None:
    from models.money import plain_amount

    console.print(
        f"[bold]Experiment {comparison.experiment}[/]: each arm against"
        f" [bold]{comparison.control}[/] ({comparison.control_finished:,} finished,"
        f" {_percent(comparison.control_rate)} recovered); minimum effect"
        f" {comparison.min_effect:.1%} absolute, alpha {comparison.alpha}, power {comparison.power}"
    )
    shown = Table(box=box.SIMPLE_HEAD)
    for name in ("Arm", "Finished", "Rate", "Difference", "95% interval", "p-value"):
        shown.add_column(name, justify="left" if name == "Arm" else "right")
    for name in ("Revenue/case difference (95% interval)", "Needed/arm", "Still needed", "Verdict"):
        shown.add_column(name, justify="right" if "eeded" in name else "left")
    for arm in comparison.arms:
        test = arm.rate
        revenue = "; ".join(
            f"{plain_amount(round(d.difference), c)}"
            + (
                f" ({plain_amount(round(d.interval.low), c)} to"
                f" {plain_amount(round(d.interval.high), c)})"
                if d.interval
                else ""
            )
            for c, d in arm.revenue_per_case.items()
        )
        shown.add_row(
            arm.arm,
            f"{arm.finished:,}",
            _percent(arm.recovery_rate),
            "–" if test is None else f"{test.difference:+.1%}",
            "–" if test is None else f"{test.interval.low:+.1%} to {test.interval.high:+.1%}",
            "–" if test is None or test.p_value is None else f"{test.p_value:.3f}",
            revenue or "–",
            f"{arm.needed_per_arm:,}",
            f"{arm.still_needed:,}",
            arm.verdict_words,
        )
    console.print(shown)


def grouped_csv(report: GroupedReport) -> str:
    currencies = sorted({c for table in report.tables for row in table.rows for c in row.revenue})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + [f"revenue_{currency}" for currency in currencies])
    for table in report.tables:
        for row in table.rows:
            found = row.recovery_interval
            values: list[Any] = [
                table.by, "" if row.key is None else row.key, row.cases, row.finished, row.open,
                row.recovered, row.recovery_rate, found.low if found else None,
                found.high if found else None, row.median_seconds_to_recover,
                row.p90_seconds_to_recover, row.messages_per_case, row.charges_per_case,
                row.churned, row.churn_rate,
            ]  # fmt: skip
            values += [row.revenue.get(currency, 0) for currency in currencies]
            writer.writerow(["" if value is None else value for value in values])
    return out.getvalue()


def render_customers(report: RecoveryReport) -> None:
    """What customers answered after their case (and the free text, for support), and how the
    warnings before an expiring card went."""
    feedback, warnings = report.feedback, report.predunning
    if feedback is not None:
        table = Table(
            title=f"Feedback: {feedback.answered:,} of {feedback.asked:,} asked answered"
            f" ({_percent(feedback.response_rate)})",
            box=box.SIMPLE_HEAD,
        )
        for name in ("Reason", "Segment", "Outcome", "Answers"):
            table.add_column(name, justify="right" if name == "Answers" else "left")
        for row in feedback.by_reason:
            table.add_row(row.reason.replace("_", " "), row.segment or "—", row.outcome,
                          f"{row.answers:,}")  # fmt: skip
        console.print(table)
        for answer in feedback.recent_texts:
            reason = answer.reason.replace("_", " ")
            line = f"  {answer.invoice_id} ({reason}): {answer.text}"
            console.print(line, markup=False, highlight=False)  # the customer's own words
    if warnings is not None and warnings.warned:
        console.print(
            f"Pre-dunning: {warnings.warned:,} expiring card(s) warned about;"
            f" {warnings.card_updated:,} updated, {warnings.renewed:,} renewed,"
            f" {warnings.failed_anyway:,} failed anyway, {warnings.open:,} waiting"
            f" (saved {_percent(warnings.saved_rate)})"
        )
