"""Benchmark: simulated cases per second, per policy, for `dunning simulate`.

    .venv/bin/python benchmarks/simulate.py [--cases 100000] [--seed 1] [--runs 3]

Runs the shipped model over the default policy and every anchor (policies/anchors/), and, as
the baseline in the same run, a bare loop that does what the simulator cannot avoid without the
engine: one `random.Random` per case and as many draws as the simulator made on average (4 for
the case itself, one per charge, two per message). The ratio simulator ÷ baseline is what to
compare across machines; the absolute time shows the issue's budget (100,000 cases per policy
in under 10 s). Best of `--runs`, each on a fresh simulator (so the engine's memo starts cold).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.loader import POLICY_DIR, load_policy
from policies.simulation_model import load_model
from policies.simulator import Simulator
from policies.simulator_result import SimulationResult

BUDGET_SECONDS = 10.0


def baseline(cases: int, seed: int, draws: int) -> float:
    start = time.perf_counter()
    for index in range(cases):
        rng = random.Random((seed << 32) | index)
        for _ in range(draws):
            rng.random()
    return time.perf_counter() - start


def best(runs: int, policy_path: Path, cases: int, seed: int) -> tuple[float, SimulationResult]:
    model, policy = load_model(), load_policy(policy_path)
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = Simulator(model).run(policy, cases, seed)
        times.append(time.perf_counter() - start)
    assert result is not None
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, metavar="N")
    parser.add_argument("--seed", type=int, default=1, metavar="N")
    parser.add_argument("--runs", type=int, default=3, metavar="N")
    args = parser.parse_args()
    paths = [POLICY_DIR / "default.yaml", *sorted((POLICY_DIR / "anchors").glob("*.yaml"))]
    print(f"{args.cases:,} cases per policy, seed {args.seed}, best of {args.runs} runs")
    print(f"{'policy':<22} {'seconds':>8} {'cases/s':>9} {'baseline s':>10} {'ratio':>6}  budget")
    for path in paths:
        seconds, result = best(args.runs, path, args.cases, args.seed)
        draws = round(4 + (result.charges + 2 * result.messages) / result.cases)
        base = min(baseline(args.cases, args.seed, draws) for _ in range(args.runs))
        verdict = "ok" if seconds < BUDGET_SECONDS else "OVER"
        print(
            f"{result.policy:<22} {seconds:8.2f} {args.cases / seconds:9,.0f}"
            f" {base:10.2f} {seconds / base:6.1f}  {verdict} (< {BUDGET_SECONDS:.0f} s)"
        )


if __name__ == "__main__":
    main()
