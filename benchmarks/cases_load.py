"""Benchmark: throughput under load, many cases at once on a real Temporal server.

    .venv/bin/python benchmarks/cases_load.py [--cases 600] [--concurrency 100] [--rounds 2]
        [--warmup 10]

benchmarks/cases.py runs one case at a time (the time-skipping server's constraint), so its
cases/s is one case's latency: every millisecond of a ledger write or an HTTP call is on it.
A billing run that fails thousands of invoices at once is the other regime: many cases in
flight, and what caps the rate is the CPU that the worker, the Temporal server, PostgreSQL and
the providers spend per case. Here `--concurrency` cases run at once on `temporal server
start-dev` (no time skipping), on the default schedule with a second for each step's day
(bench_policy), through DunningWorkflow and through the minimal baseline in turn, as in
cases.py. Also prints the CPU each process spent per case, from psutil.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.testing import WorkflowEnvironment

from benchmarks.case_runs import Run, take_turns
from benchmarks.cases import (
    BENCH_CONVERTER,
    BIN,
    both_inputs,
    report,
    stack,
)
from models.store import Ledger, make_engine
from policies.loader import POLICY_DIR, load_policy
from workflows.search_attributes import ALL_KEYS

SECOND = timedelta(seconds=1)


def bench_policy(folder: Path) -> str:
    """The default policy with step n at n seconds and the final action a second after the
    last step: a case lasts seconds, not weeks, and does the same work."""
    policy = load_policy(POLICY_DIR / "default.yaml")
    steps = tuple(
        step.model_copy(update={"offset": SECOND * (n + 1)}) for n, step in enumerate(policy.steps)
    )
    final = policy.final.model_copy(update={"after": SECOND * (len(steps) + 1)})
    short = policy.model_copy(
        update={
            "name": "bench",
            "steps": steps,
            "final": final,
            "min_charge_spacing": SECOND,
            "quiet_hours": None,
        }
    )
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(short.model_dump(mode="json", exclude_none=True)))
    load_policy(path)  # the file must read back as a valid policy
    return str(path)


def cpu_seconds(worker_pid: int) -> collections.Counter[str]:
    """CPU (user + system) so far of each process that serves a case, by role."""
    spent: collections.Counter[str] = collections.Counter()
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            times, argv = proc.cpu_times(), " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.pid == worker_pid:
            role = "worker (and client)"
        elif "start-dev" in argv:
            role = "Temporal server"
        elif proc.info["name"] == "postgres":
            role = "PostgreSQL"
        elif "standins." in argv:
            role = "stand-ins"
        else:
            continue
        spent[role] += times.user + times.system
    return spent


async def measured(cpu: dict[str, float], side: str, drive: Any) -> None:
    before = cpu_seconds(psutil.Process().pid)
    await drive
    after = cpu_seconds(psutil.Process().pid)
    for role, seconds in after.items():
        cpu[f"{side}|{role}"] += seconds - before.get(role, 0.0)


async def main(count: int, concurrency: int, warmup: int, rounds: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        stack(dunning_policy=bench_policy(Path(folder)), dunning_quiet_hours="off") as settings,
    ):
        total = count + warmup * rounds
        full_inputs, min_inputs = both_inputs(settings, total)
        env = await WorkflowEnvironment.start_local(
            data_converter=BENCH_CONVERTER,
            dev_server_existing_path=str(BIN / "temporal"),
            search_attributes=ALL_KEYS,
            dev_server_extra_args=["--log-level", "error"],
        )
        ledger = Ledger(make_engine(settings.database_url))
        full, minimal = Run("DunningWorkflow"), Run("minimal baseline")
        cpu: dict[str, float] = collections.defaultdict(float)
        print(f"Running {count} cases through each, {concurrency} at a time…", flush=True)
        await take_turns(
            env.client,
            (settings, ledger),
            ((full_inputs, full), (min_inputs, minimal)),
            (warmup, concurrency, rounds),
            lambda side, drive: measured(cpu, side, drive),
        )
        await env.shutdown()
        ledger.engine.dispose()
    report(full, minimal)
    cpu_report(cpu, total)


def cpu_report(cpu: dict[str, float], cases: int) -> None:
    """CPU per case, warm-up cases included (and each side's history reads after its run)."""
    print(f"\n{'CPU ms per case':28}{'DunningWorkflow':>18}{'minimal':>12}{'ratio':>9}")
    by_side: dict[str, dict[str, float]] = {"full": {}, "min": {}}
    for key, seconds in cpu.items():
        side, role = key.split("|")
        by_side[side][role] = seconds * 1000 / cases
    for spent in by_side.values():
        spent["total"] = sum(spent.values())
    for role in sorted(by_side["full"].keys() | by_side["min"].keys(), key=lambda r: r == "total"):
        a, b = by_side["full"].get(role, 0.0), by_side["min"].get(role, 0.0)
        print(f"{role:28}{a:>18.1f}{b:>12.1f}{a / b if b else 0:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10, help="uncounted cases per round and path")
    parser.add_argument("--rounds", type=int, default=2, help="turns each workflow takes")
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.concurrency, args.warmup, args.rounds))
