"""Experiments: loading errors name file, experiment and field; assignment is sticky and
follows the weights; a stopped experiment gives the control, a declared winner the winner."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from policies.experiments import Arm, Experiment, assign, hash_point
from policies.loader import POLICY_DIR
from policies.rules import RulesError, load_rules

IDS = [f"cus_{n:06d}" for n in range(10_000)]
customers = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


def experiment(*weights: float, status: object = "running") -> Experiment:
    arms = [{"name": "control", "weight": weights[0], "control": True}]
    arms += [{"name": f"arm{i}", "weight": w} for i, w in enumerate(weights[1:], start=1)]
    return Experiment.model_validate({"name": "copy", "status": status, "arms": arms})


def shares(exp: Experiment) -> dict[str, float]:
    counts = Counter(assign(exp, customer).arm.name for customer in IDS)
    return {name: count / len(IDS) for name, count in counts.items()}


def test_the_point_is_sha256_of_experiment_and_customer() -> None:
    digest = hashlib.sha256(b"copy:cus_42").digest()
    assert hash_point("copy", "cus_42") == int.from_bytes(digest[:8], "big") / 2**64
    # A constant, unlike Python's salted hash(): the same arm on every machine and restart.
    assert hash_point("copy", "cus_42") == 0x78234D3188D17FC6 / 2**64


def test_fifty_fifty_shares_are_within_two_points_over_10000_customers() -> None:
    found = shares(experiment(50, 50))
    assert abs(found["control"] - 0.5) <= 0.02
    assert abs(found["arm1"] - 0.5) <= 0.02


def test_uneven_weights_are_respected() -> None:
    found = shares(experiment(70, 20, 10))
    assert abs(found["control"] - 0.7) <= 0.02
    assert abs(found["arm1"] - 0.2) <= 0.02
    assert abs(found["arm2"] - 0.1) <= 0.02
    # Weights are relative: 0.7/0.2/0.1 splits the same customers the same way.
    same = experiment(0.7, 0.2, 0.1)
    assert all(assign(same, c).arm.name == assign(experiment(70, 20, 10), c).arm.name for c in IDS)


def test_another_experiment_splits_the_same_customers_independently() -> None:
    other = Experiment.model_validate({**experiment(50, 50).model_dump(), "name": "subject"})
    both = Counter((assign(experiment(50, 50), c).arm.name, assign(other, c).arm.name) for c in IDS)
    # Independent halves: each of the four combinations holds about a quarter.
    assert len(both) == 4
    assert all(abs(n / len(IDS) - 0.25) <= 0.02 for n in both.values())


def test_stopped_gives_the_control_and_a_winner_gives_the_winner_to_everyone() -> None:
    stopped = experiment(50, 50, status="stopped")
    won = experiment(50, 50, status={"winner": "arm1"})
    assert {assign(stopped, c).arm.name for c in IDS[:500]} == {"control"}
    assert {assign(won, c).arm.name for c in IDS[:500]} == {"arm1"}
    assert not assign(stopped, "cus_1").randomized
    assert "stopped" in assign(stopped, "cus_1").why
    assert "winner" in assign(won, "cus_1").why


def test_message_variant_defaults_to_the_arm_name_and_none_for_the_control() -> None:
    assert Arm(name="b", weight=1).message_variant == "b"
    assert Arm(name="gentle", weight=1, variant="b").message_variant == "b"
    assert Arm(name="control", weight=1, control=True).message_variant is None
    assert Arm(name="control", weight=1, control=True, variant="a").message_variant == "a"


# No deadline: a busy CI machine must not turn a slow example into a failure.
@hyp_settings(deadline=None)
@given(customers, st.lists(st.floats(0.01, 1000), min_size=2, max_size=6))
def test_assignment_is_deterministic_and_lands_on_an_arm(
    customer: str, weights: list[float]
) -> None:
    exp = experiment(*weights)
    first = assign(exp, customer)
    assert assign(exp, customer) == first
    assert first.arm in exp.arms
    assert first.point is not None and 0 <= first.point < 1


# No deadline: a busy CI machine must not turn a slow example into a failure.
@hyp_settings(deadline=None)
@given(customers, st.lists(st.floats(0.01, 1000), min_size=2, max_size=6))
def test_the_arm_is_the_one_whose_cumulative_weight_span_holds_the_point(
    customer: str, weights: list[float]
) -> None:
    exp = experiment(*weights)
    drawn = assign(exp, customer)
    assert drawn.point is not None
    index = exp.arms.index(drawn.arm)
    low = sum(weights[:index]) / sum(weights)
    high = sum(weights[: index + 1]) / sum(weights)
    assert low - 1e-9 <= drawn.point <= high + 1e-9


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


DEFAULT_RULE = "rules:\n- {policy: default, experiment: copy}\n"


@pytest.mark.parametrize(
    ("experiments", "expected"),
    [
        (
            "- {name: copy, arms: [{name: a, weight: 1, control: true}, {name: b, weight: 0}]}",
            "experiments[0] (copy): arms.1.weight: Input should be greater than 0",
        ),
        (
            "- {name: copy, arms: [{name: a, weight: 1}, {name: b, weight: 1}]}",
            "experiments[0] (copy): (experiment): Value error, arms: exactly one arm needs"
            " `control: true` (found: none)",
        ),
        (
            "- {name: copy, status: {winner: c},"
            " arms: [{name: a, weight: 1, control: true}, {name: b, weight: 1}]}",
            "experiments[0] (copy): (experiment): Value error, status: winner 'c' is not an arm",
        ),
        (
            "- {name: copy, status: paused,"
            " arms: [{name: a, weight: 1, control: true}, {name: b, weight: 1}]}",
            "experiments[0] (copy): status: Input should be 'running', 'stopped' or 'winner'",
        ),
        (
            "- {name: copy, arms: [{name: a, weight: 1, control: true},"
            " {name: b, weight: 1, policy: nope}]}",
            "experiments[0] (copy): arms.1.policy: ",
        ),
        (
            "- {name: copy, arms: [{name: a, weight: 1, control: true}, {name: a, weight: 1}]}",
            "experiments[0] (copy): (experiment): Value error, arms: arm name(s) a used more",
        ),
        (
            "- {name: copy, arms: [{name: a, weight: 1, control: true}, {name: B!, weight: 1}]}",
            "experiments[0] (copy): arms.1.name: String should match pattern",
        ),
    ],
)
def test_experiment_errors_name_file_experiment_and_field(
    tmp_path: Path, experiments: str, expected: str
) -> None:
    path = write(tmp_path, f"experiments:\n{experiments}\n{DEFAULT_RULE}")
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(err.value).startswith(f"{path}: {expected}")


def test_a_rule_naming_an_unknown_experiment_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, DEFAULT_RULE)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(err.value) == f"{path}: rules[0]: experiment: no experiment copy (known: none)"


def test_experiments_may_live_in_their_own_file_beside_the_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        "experiments:\n- {name: copy, status: stopped, arms: [{name: a, weight: 1, control: true},"
        " {name: b, weight: 3, policy: demo}]}\n",
        "experiments.yaml",
    )
    rules = load_rules(write(tmp_path, f"experiments: experiments.yaml\n{DEFAULT_RULE}"))
    assert rules.experiments["copy"].status == "stopped"
    assert rules.experiments["copy"].arm("b").policy == "demo"

    bad = write(tmp_path, "experiments:\n- {name: copy}\n", "bad.yaml")
    with pytest.raises(RulesError) as err:
        load_rules(write(tmp_path, f"experiments: bad.yaml\n{DEFAULT_RULE}"))
    assert str(err.value).startswith(f"{bad}: experiments[0] (copy): arms: Field required")


def test_shipped_rules_files_load() -> None:
    assert load_rules(POLICY_DIR / "rules.yaml").experiments == {}
    demo = load_rules(POLICY_DIR / "demo-rules.yaml")
    copy = demo.experiments[demo.rules[-1].experiment or ""]
    assert copy.status == "running" and copy.control.name == "control"
    assert [arm.message_variant for arm in copy.arms] == [None, "b"]
    found = shares(copy)
    assert abs(found["control"] - 0.5) <= 0.02
