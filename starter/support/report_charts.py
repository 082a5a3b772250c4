"""The report page's charts, rendered on the server as inline SVG (Vega-Lite through altair
and vl-convert): no chart library in the browser, nothing fetched from anywhere.

- recovery curve: per arm, the share of its finished cases recovered within N days of the
  failure (the case opening), N = 0..CURVE_DAYS;
- by step: of the finished cases that reached each step, the share that step recovered;
- by channel: of the finished cases that had a message on each channel, the share recovered.

A chart takes ~0.2 s to render (the first of a process ~1.5 s: vl-convert starts its engine),
so each is cached on its data: a page reloaded over the same figures renders nothing again.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from starter.support import report_sql as sql
from starter.support.report_by import Filters, GroupTable

CURVE_DAYS = 30
WIDTH, HEIGHT = 420, 200
NO_ARM = "no experiment"


class Charts(BaseModel):
    curve: str | None
    by_step: str | None
    by_channel: str | None


def curve_points(session: Session, filters: Filters) -> list[dict[str, Any]]:
    finished, recovered = sql.curve(session, filters)
    points = []
    for arm, total in sorted(finished.items(), key=lambda item: str(item[0] or "")):
        by_day: dict[int, int] = {}
        for name, day, n in recovered:
            if name == arm:
                by_day[day] = by_day.get(day, 0) + n
        running = 0
        for day in range(CURVE_DAYS + 1):
            running += by_day.get(day, 0)
            points.append({"arm": arm or NO_ARM, "day": day, "share": running / total})
    return points


def rates(table: GroupTable, none_label: str) -> list[dict[str, Any]]:
    return [
        {
            "group": none_label if row.key is None else str(row.key),
            "rate": row.recovery_rate,
            "order": n,
        }
        for n, row in enumerate(table.rows)
        if row.recovery_rate is not None
    ]


def charts(session: Session, filters: Filters, steps: GroupTable, channels: GroupTable) -> Charts:
    points = curve_points(session, filters)
    step_rates = rates(steps, "outside")
    channel_rates = rates(channels, "no message")
    return Charts(
        curve=_svg("curve", json.dumps(points)) if points else None,
        by_step=_svg("bars", json.dumps(step_rates)) if step_rates else None,
        by_channel=_svg("bars", json.dumps(channel_rates)) if channel_rates else None,
    )


@lru_cache(maxsize=64)
def _svg(kind: str, values: str) -> str:
    import altair as alt
    import vl_convert

    data = alt.Data(values=json.loads(values))
    share = alt.Axis(format="%")
    if kind == "curve":
        chart = (
            alt.Chart(data)
            .mark_line()
            .encode(
                x=alt.X("day:Q", title="days since the payment failed"),
                y=alt.Y("share:Q", title="recovered (of finished)", axis=share),
                color=alt.Color("arm:N", title="arm"),
            )
        )
    else:
        chart = (
            alt.Chart(data)
            .mark_bar()
            .encode(
                x=alt.X("group:N", title=None, sort=alt.EncodingSortField("order")),
                y=alt.Y("rate:Q", title="recovery rate", axis=share),
            )
        )
    spec = chart.properties(width=WIDTH, height=HEIGHT).to_dict()
    return str(vl_convert.vegalite_to_svg(spec))
