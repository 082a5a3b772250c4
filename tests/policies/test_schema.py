"""The policy file format: shipped policies load, bad files name the file and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from policies.durations import format_duration, parse_duration
from policies.loader import POLICY_DIR, PolicyError, load_policy, resolve_policy_path


@pytest.mark.parametrize("name", ["default", "demo"])
def test_shipped_policies_load(name: str) -> None:
    policy = load_policy(resolve_policy_path(name, "unused"))
    assert policy.name == name
    assert policy.final.after > policy.steps[-1].offset


def test_demo_policy_runs_a_whole_schedule_within_minutes() -> None:
    assert load_policy(POLICY_DIR / "demo.yaml").final.after <= timedelta(minutes=5)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("3d", 259200),
        ("1w", 604800),
        ("1d12h", 129600),
        (45, 45),
        ("1.5h", 5400),
    ],
)
def test_durations_from_seconds_to_weeks(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "3 fortnights", "-1d", "d", True, None])
def test_bad_durations_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_duration_round_trip() -> None:
    assert format_duration(parse_duration("1d2h3m4s")) == "1d2h3m4s"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


BASE = """
name: custom
max_attempts: 3
steps:
  - {offset: 1d, retry: true, level: friendly}
  - {offset: 3d, retry: true, template: reminder, level: reminder}
final: {action: cancel_subscription, after: 7d}
grace: {max_days_per_grant: 5, max_total_days: 10}
"""


def test_a_valid_custom_policy(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, BASE)).max_attempts == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("cancel_subscription", "delete_customer"), "final.action"),
        (("offset: 3d", "offset: 12h"), "steps"),
        (("after: 7d", "after: 2d"), "final.after"),
        (("template: reminder", "template: shouting"), "steps.1.template"),
        (("max_attempts: 3", "max_attempts: -1"), "max_attempts"),
        (("offset: 1d", "offset: soon"), "steps.0.offset"),
        (("level: friendly", "level: friendly, colour: red"), "steps.0.colour"),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    path = write(tmp_path, BASE.replace(*change))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(path) in str(info.value)
    assert field in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(write(tmp_path, "steps: [unclosed"))


def test_a_decline_code_cannot_be_in_two_classes(tmp_path: Path) -> None:
    text = BASE + "declines: {soft: [expired_card], new_payment_method: [expired_card]}\n"
    with pytest.raises(PolicyError, match="expired_card"):
        load_policy(write(tmp_path, text))
