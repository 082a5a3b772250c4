"""Every `--help` page speaks in names, not type placeholders (issue 8, item 9)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from starter.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
# <bool>, <str>, <int range>, {INVOICE}: what typer's own pages print.
PLACEHOLDER = re.compile(r"<[a-z| ]+>|\{[A-Z_]+\}")


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_page_has_no_type_placeholders(name: str) -> None:
    result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert not PLACEHOLDER.findall(result.output), result.output
    assert "Usage: dunning" in result.output


def test_arguments_are_named_in_usage_and_options_by_metavar() -> None:
    result = CliRunner().invoke(app, ["grace", "--help"], env={"COLUMNS": "100"})
    assert "Usage: dunning grace [OPTIONS] INVOICE" in result.output
    assert re.search(r"INVOICE\s+Stripe invoice id", result.output)
    assert re.search(r"--days N\s+Days to add", result.output)


def test_top_level_help_groups_commands_by_panel() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    panels = re.findall(r"^(\w[\w ]*):$", result.output, flags=re.MULTILINE)
    assert {"Run", "Support", "Reports"} <= set(panels)
