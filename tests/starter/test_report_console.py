"""The console's report page: grouped tables under its filters, the experiment's comparison
and the server-rendered SVG charts (over the seeded arms of test_report_by)."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from models.settings import Settings
from models.store import Ledger
from starter.support.report_charts import _svg
from tests.starter.test_report_by import seed
from tests.starter.test_support_console import console, logged_in


@pytest.fixture(scope="module")
def experiment(ledger: Ledger) -> str:
    name = f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, name)
    return name


@pytest.fixture
async def http(settings: Settings, ledger: Ledger) -> httpx.AsyncClient:
    return await logged_in(console(settings, ledger))


def rows_of(html: str, table: str) -> list[str]:
    body = re.search(rf'<table class="results" id="group-{table}">.*?</table>', html, re.S)
    assert body is not None, f"no table {table}"
    cells = re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>", body.group(0), re.S)
    return [cell.strip() for cell in cells]


async def test_the_experiment_with_tables_and_charts(
    http: httpx.AsyncClient, experiment: str
) -> None:
    params = {"days": "0", "experiment": experiment, "min_effect": "0.3"}
    response = await http.get("/support/report", params=params)

    assert response.status_code == 200, response.text
    html = response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert rows_of(html, "variant") == ["B", "control"]
    assert rows_of(html, "step") == [
        "step 1",
        "step 2",
        "step 3",
        "outside the schedule (every case; recovered outside it)",
    ]
    assert rows_of(html, "channel") == ["email", "sms", "no message"]
    assert 'id="experiment"' in html and "not enough data" in html
    for chart in ("chart-curve", "chart-step", "chart-channel"):
        figure = re.search(rf'<figure id="{chart}">.*?</figure>', html, re.S)
        assert figure is not None and "<svg" in figure.group(0), chart
    assert "<script" not in html.split("</header>", 1)[1]  # no chart library, no inline script


async def test_filters_narrow_every_table(http: httpx.AsyncClient, experiment: str) -> None:
    params = {"days": "0", "experiment": experiment, "variant": "B", "segment": "ent"}
    html = (await http.get("/support/report", params=params)).text

    assert rows_of(html, "variant") == ["B"]
    assert rows_of(html, "segment") == ["ent"]
    assert 'value="ent"' in html  # the form keeps what was asked
    # The comparison needs the control arm, which the variant filter removed.
    assert "no arm &#39;control&#39;" in html and 'id="experiment"' not in html


async def test_unknown_values_fall_back_to_defaults(http: httpx.AsyncClient) -> None:
    params = {"days": "many", "min_effect": "7", "experiment": f"none_{uuid.uuid4().hex[:6]}"}
    response = await http.get("/support/report", params=params)

    assert response.status_code == 200, response.text
    assert 'name="days" inputmode="numeric" value="30"' in response.text
    assert 'value="0.05"' in response.text
    assert rows_of(response.text, "variant") == ["No cases under these filters."]


def test_chart_labels_are_escaped_in_the_svg() -> None:
    values = [{"group": "<script>alert(1)</script>", "rate": 0.5, "order": 0}]
    svg = _svg("bars", json.dumps(values))

    assert svg.startswith("<svg") and "<script" not in svg
    assert "&lt;script&gt;" in svg
