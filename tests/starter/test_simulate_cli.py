"""`dunning simulate` in process: JSON figures, side-by-side tables, and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from policies.loader import POLICY_DIR, load_policy
from policies.simulation_model import load_model
from policies.simulator import Simulator
from starter.cli import app

SMALL = ["--cases", "300", "--seed", "5"]


def test_json_gives_each_policy_the_simulators_figures() -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--policy", "default", "--policy", "anchors/polar", *SMALL, "--json"]
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["cases"], data["seed"], data["model"], data["fit"]) == (300, 5, "default", None)
    assert "UTC" in data["clock"]
    assert [p["policy"] for p in data["policies"]] == ["default", "polar"]
    expected = Simulator(load_model()).run(load_policy(POLICY_DIR / "anchors/polar.yaml"), 300, 5)
    assert data["policies"][1] == json.loads(json.dumps(expected.as_dict()))


def test_tables_put_the_policies_side_by_side() -> None:
    result = CliRunner().invoke(
        app,
        ["simulate", "--policy", "default", "--policy", "anchors/stripe_smart_retries", *SMALL],
        env={"COLUMNS": "120"},
    )

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "default stripe_smart_retries" in lines
    for label in (
        "Recovery rate",
        "Revenue recovered",
        "Charges per recovered case",
        "Messages per recovered case",
        "Median days to recover",
        "Final action",
        "Charges at night or on weekends",
    ):
        assert any(line.startswith(label + " ") for line in lines), f"{label!r} missing"
    assert "Clock: failure instants uniform over one week" in result.stdout


def test_a_policy_path_and_a_model_file_can_be_given(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        (POLICY_DIR / "simulation/default_model.yaml")
        .read_text()
        .replace("name: default", "name: mine")
    )
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--policy",
            str(POLICY_DIR / "demo.yaml"),
            "--model",
            str(model),
            *SMALL,
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["model"], data["policies"][0]["policy"]) == ("mine", "demo")


def test_bad_files_exit_1_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "model.yaml"
    broken.write_text("name: x\n")

    no_policy = CliRunner().invoke(app, ["simulate", "--policy", "nonexistent", *SMALL])
    bad_model = CliRunner().invoke(app, ["simulate", "--model", str(broken), *SMALL])

    assert no_policy.exit_code == 1
    assert no_policy.output.startswith("Error: bad policy file:"), no_policy.output
    assert bad_model.exit_code == 1
    assert bad_model.output.startswith(f"Error: bad model file: {broken}: invalid"), (
        bad_model.output
    )
    assert "Traceback" not in no_policy.output + bad_model.output


def test_usage_mistakes_exit_2() -> None:
    for args, message in [
        (["--cases", "0"], "--cases must be at least 1"),
        (["--backtest", "--since", "2001-01-01"], "--backtest needs --since and --until"),
        (["--since", "yesterday"], "--since 'yesterday' is not a date"),
    ]:
        result = CliRunner().invoke(app, ["simulate", *args])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"Error: {message}"), result.output
