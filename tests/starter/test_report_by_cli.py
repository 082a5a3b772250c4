"""`dunning report --by / --experiment`, in process, over the seeded arms of test_report_by."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from models.settings import get_settings
from models.store import Ledger
from starter.cli import app
from tests.starter.test_report_by import seed


@pytest.fixture(scope="module")
def experiment(ledger: Ledger) -> str:
    name = f"exp_{uuid.uuid4().hex[:8]}"
    seed(ledger, name)
    return name


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_json_has_each_table_and_the_comparison(cli: CliRunner, experiment: str) -> None:
    args = ["report", "--experiment", experiment, "--by", "segment", "--by", "step", "--json"]
    result = cli.invoke(app, [*args, "--min-effect", "0.3"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [table["by"] for table in data["tables"]] == ["segment", "step", "variant"]
    assert data["filters"]["experiment"] == experiment
    arms = {row["key"]: row for row in data["tables"][2]["rows"]}
    assert (arms["B"]["finished"], arms["B"]["open"], arms["B"]["recovered"]) == (4, 1, 3)
    assert "revenue_moments" not in arms["B"]
    comparison = data["comparison"]
    assert (comparison["control"], comparison["min_effect"]) == ("control", 0.3)
    (arm,) = comparison["arms"]
    assert (arm["arm"], arm["verdict"]) == ("B", "not_enough_data")
    assert arm["rate"]["difference"] == pytest.approx(0.25)


def test_csv_is_one_line_per_group(cli: CliRunner, experiment: str) -> None:
    result = cli.invoke(app, ["report", "--experiment", experiment, "--by", "variant", "--csv"])

    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["by"], r["key"], r["cases"], r["open"]) for r in lines] == [
        ("variant", "B", "5", "1"),
        ("variant", "control", "5", "1"),
    ]
    assert (lines[0]["revenue_eur"], lines[0]["revenue_usd"]) == ("4000", "4000")
    assert (lines[1]["revenue_eur"], lines[1]["recovery_rate"]) == ("0", "0.5")


def test_tables_and_the_verdict(cli: CliRunner, experiment: str) -> None:
    result = cli.invoke(
        app, ["report", "--experiment", experiment, "--by", "channel"], env={"COLUMNS": "250"}
    )

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert any(line.startswith("no message 1 0 1 1 100.0%") for line in lines), result.stdout
    assert any(line.startswith("control 5 1 4 2 50.0%") for line in lines), result.stdout
    assert "not enough data" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "country"], "--by 'country' is not one of segment, policy, variant"),
        (["--min-effect", "5"], "--min-effect is an absolute rate difference"),
        (["--by", "step", "--json", "--csv"], "--json and --csv: choose one"),
    ],
)
def test_usage_errors(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli.invoke(app, ["report", *args])

    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {message}"), result.output


def test_an_experiment_without_its_control_arm(cli: CliRunner, experiment: str) -> None:
    result = cli.invoke(app, ["report", "--experiment", experiment, "--control", "A"])

    assert result.exit_code == 2, result.output
    assert "no arm 'A'" in result.output and "arms: B, control" in result.output
