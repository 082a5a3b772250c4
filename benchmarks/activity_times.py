"""Time spent in each activity, by task queue: `benchmarks/cases.py --activity-times`.

A worker interceptor, so local and regular activities are timed alike, from the worker's side
(the activity's own work, not the time waiting for a slot or for Temporal). Also the part of
it spent waiting on the ledger's statements (SQLAlchemy's cursor events, from the driver's
execute to its answer), which the minimal baseline does not have."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, event
from temporalio import activity, client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# (task queue, activity name) -> seconds of each run
TIMES: dict[tuple[str, str], list[float]] = defaultdict(list)
# (task queue, activity name) -> seconds of each ledger statement it ran
LEDGER: dict[tuple[str, str], list[float]] = defaultdict(list)


class _Timed(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info, started = activity.info(), time.perf_counter()
        try:
            return await self.next.execute_activity(input)
        finally:
            TIMES[(info.task_queue, info.activity_type)].append(time.perf_counter() - started)


class ActivityTimes(client.Interceptor, Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Timed(next)


def _before(conn: Any, *_: Any) -> None:
    conn.info.setdefault("bench_started", []).append(time.perf_counter())


def _after(conn: Any, *_: Any) -> None:
    started = conn.info["bench_started"].pop()
    if activity.in_activity():
        info = activity.info()
        LEDGER[(info.task_queue, info.activity_type)].append(time.perf_counter() - started)


def time_ledger() -> None:
    """Time every statement of every engine in this process (the ledger's two pools)."""
    event.listen(Engine, "before_cursor_execute", _before)
    event.listen(Engine, "after_cursor_execute", _after)


def report(cases: dict[str, int]) -> None:
    """Per task queue: each activity's runs, mean time, and time per case (`cases` counted)."""
    print("\nActivity time (worker side):")
    for queue, count in cases.items():
        rows = sorted((name, runs) for (q, name), runs in TIMES.items() if q == queue)
        total = sum(sum(runs) for _, runs in rows)
        statements = [t for (q, _), runs in LEDGER.items() if q == queue for t in runs]
        ledger = f", ledger statements {1000 * sum(statements) / max(count, 1):.1f} ms of it"
        print(f"  {queue}: {1000 * total / max(count, 1):.1f} ms per case{ledger}")
        for name, runs in rows:
            mean = 1000 * sum(runs) / len(runs)
            per_case = 1000 * sum(runs) / max(count, 1)
            line = f"    {name:24} runs={len(runs):<6} mean={mean:6.2f} ms  {per_case:6.2f} ms/case"
            run_statements = LEDGER.get((queue, name))
            if run_statements:
                waited = 1000 * sum(run_statements) / max(count, 1)
                line += f"  (ledger: {len(run_statements) / max(count, 1):.1f} statements,"
                line += f" {waited:.2f} ms/case)"
            print(line)
