"""The policy simulator: deterministic, sane on known populations, strict about its model file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.loader import POLICY_DIR, load_policy, resolve_policy_path
from policies.schema import Policy, Step
from policies.simulation_model import (
    DEFAULT_MODEL,
    ModelError,
    SimulationModel,
    load_model,
)
from policies.simulator import Simulator
from policies.simulator_result import night_or_weekend

ANCHORS = sorted((POLICY_DIR / "anchors").glob("*.yaml"))
CASES = 3000


@pytest.fixture(scope="module")
def model() -> SimulationModel:
    return load_model()


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy(resolve_policy_path("default", POLICY_DIR / "default.yaml"))


def variant(model: SimulationModel, **changes: Any) -> SimulationModel:
    """The model with some sections' fields replaced: {"customer": {"reply_rate": 0}}."""
    raw = model.model_dump()
    for section, fields in changes.items():
        raw[section] = {**raw[section], **fields} if isinstance(fields, dict) else fields
    return SimulationModel.model_validate(raw)


def test_same_seed_same_answer_other_seed_other_answer(
    model: SimulationModel, default: Policy
) -> None:
    first = Simulator(model).run(default, CASES, seed=7)
    again = Simulator(model).run(default, CASES, seed=7)
    other = Simulator(model).run(default, CASES, seed=8)

    assert first == again
    assert first.as_dict() != other.as_dict()


def test_every_case_ends_one_way_and_the_figures_add_up(
    model: SimulationModel, default: Policy
) -> None:
    result = Simulator(model).run(default, CASES, seed=1)

    assert result.recovered + result.final_action == result.cases == CASES
    assert sum(result.recovered_by.values()) == result.recovered
    assert 0 < result.amount_recovered < result.amount_due
    assert result.charges_night_or_weekend <= result.charges_at_night + result.charges_on_weekend
    assert (
        max(result.charges_at_night, result.charges_on_weekend) <= result.charges_night_or_weekend
    )
    rates = result.rates
    assert rates["recovery_rate"] + rates["final_action_share"] == pytest.approx(1.0)  # type: ignore[operator]


def test_one_more_retry_never_recovers_less(model: SimulationModel, default: Policy) -> None:
    """Every case meets the same draws under both policies up to the added retry at day 19."""
    extra = Step(offset=timedelta(days=19), retry=True, level="final")
    longer = default.model_copy(
        update={"name": "longer", "max_attempts": 5, "steps": (*default.steps, extra)}
    )
    for seed in (1, 2, 3):
        short = Simulator(model).run(default, CASES, seed)
        more = Simulator(model).run(longer, CASES, seed)
        assert more.recovered >= short.recovered
        assert more.charges > short.charges
    assert more.recovered > short.recovered


def test_a_model_where_nothing_works_recovers_nothing(
    model: SimulationModel, default: Policy
) -> None:
    hopeless = variant(
        model,
        retry={"success": {"default": 0.0}},
        customer={
            "act_on_message": {"friendly": 0.0, "ask": 0.0},
            "spontaneous_per_day": 0.0,
            "new_card_success": 0.0,
        },
    )
    result = Simulator(hopeless).run(default, CASES, seed=1)

    assert (result.recovered, result.amount_recovered) == (0, 0)
    assert result.final_action == CASES
    assert result.median_days_to_recover is None
    # Every soft decline is retried at each of the four retry steps, never more.
    assert result.charges <= 4 * CASES


def test_declines_needing_authentication_are_asked_for_and_never_charged(
    model: SimulationModel, default: Policy
) -> None:
    population = {
        **model.population.model_dump(),
        "declines": [{"code": "authentication_required", "share": 1.0}],
    }
    silent = variant(
        model,
        population=population,
        customer={"act_on_message": {"ask": 0.0}, "spontaneous_per_day": 0.0},
    )
    result = Simulator(silent).run(default, 500, seed=1)

    assert result.charges == 0
    # The immediate ask, then the four step emails of the default schedule.
    assert result.messages == 500 * 5
    assert result.final_action == 500


def test_the_clock_is_utc_from_monday_midnight() -> None:
    hour = 3600.0
    assert night_or_weekend(0.0, 23 * hour) == (True, False)  # Monday 23:00
    assert night_or_weekend(0.0, 12 * hour) == (False, False)  # Monday noon
    assert night_or_weekend(5 * 24 * hour, 12 * hour) == (False, True)  # Saturday noon
    assert night_or_weekend(6 * 24 * hour + 23 * hour, 2 * hour) == (True, False)  # Monday 01:00


def test_the_shipped_model_and_anchors_load() -> None:
    assert load_model(DEFAULT_MODEL).name == "default"
    assert {a.stem for a in ANCHORS} >= {
        "stripe_smart_retries",
        "killbill_overdue",
        "polar",
        "recurly_default",
    }
    for path in ANCHORS:
        policy = load_policy(resolve_policy_path(f"anchors/{path.stem}", "unused.yaml"))
        assert policy.name == path.stem
        assert "Source:" in path.read_text(encoding="utf-8"), f"{path} cites no source"


def write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["population"]["amounts"][0].update(share=0.9), "amounts shares must add up"),
        (lambda r: r["retry"]["success"].pop("default"), "retry: Value error, success needs"),
        (lambda r: r["retry"]["success"].update(x=1.5), "success.x must be between 0 and 1"),
        (lambda r: r["customer"].update(act_after="soon"), "customer.act_after"),
        (lambda r: r["customer"].update(pay_share=2), "customer.pay_share"),
        (lambda r: r.update(colour="blue"), "colour: Extra inputs are not permitted"),
    ],
)
def test_model_errors_name_the_file_and_the_field(
    tmp_path: Path, change: Any, message: str
) -> None:
    raw = yaml.safe_load(DEFAULT_MODEL.read_text(encoding="utf-8"))
    change(raw)
    path = write(tmp_path, raw)

    with pytest.raises(ModelError) as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}: invalid simulation model: ")
    assert message in str(err.value)


def test_a_missing_or_broken_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "absent.yaml")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_model(write(tmp_path, "population: [unclosed"))
    with pytest.raises(ModelError, match="must be a YAML mapping"):
        load_model(write(tmp_path, "- a list"))
