"""Benchmark: fault tolerance as a measured figure.

    .venv/bin/python benchmarks/faults.py [--cases 40] [--scenario NAME ...]

Starts its own stacks (Temporal dev server on a file database, Stripe and SendGrid stand-ins,
a throwaway PostgreSQL cluster when the server binaries exist, the worker and the webhook API,
all on loopback), runs demo-policy cases through each scenario's fault and measures the result
from the stand-ins, the ledger and Temporal's record of each execution. Prints one table; every
loss column must read 0, else the exit status is 1. Everything started is stopped at exit,
also on Ctrl-C or failure.

Scenarios (a scenario runs together with the others of its stack): stripe_500, stripe_429,
stripe_hang (stack "stripe"); sendgrid_5xx, sendgrid_timeout (stack "sendgrid"); worker_kill;
temporal_restart, webhooks_temporal_down (stack "temporal"); postgres_down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.service import RPCError

from benchmarks.faults_compat import temporal_client
from benchmarks.faults_measure import Row, measure, sweep_left_claims, table
from benchmarks.faults_relay import Relay
from benchmarks.faults_scenarios import PLANS, Ctx, Plan, log
from benchmarks.faults_stack import SECRET, PgCluster, Stack, pg_bin
from models.migrate import scratch_database, upgrade_to_head

ALL = [s for plan in PLANS for s in plan.scenarios]
TOTAL_SECONDS = 14 * 60  # the whole run, setup and teardown included, stays under 15 minutes
EVIDENCE_LINES = 12
MIGRATING = asyncio.Lock()


async def wait_closed(ctx: Ctx, until: float) -> None:
    """Until every case's execution exists and none is running, or the deadline."""
    expected = sum(len(cases) for cases in ctx.cases.values())
    while time.monotonic() < until:
        try:
            running = await ctx.client.count_workflows("ExecutionStatus = 'Running'")
            total = await ctx.client.count_workflows("WorkflowType = 'DunningWorkflow'")
            if running.count == 0 and total.count >= expected:
                return
        except RPCError:
            pass  # a restarting server answers again in a moment
        await asyncio.sleep(5)


async def run_stack(
    plan: Plan, args: argparse.Namespace, base: Path, stacks: list[Stack], exits: Any
) -> list[Row]:
    root = base / plan.name
    root.mkdir()
    bindir = None if args.no_own_postgres else pg_bin()
    pg = PgCluster(root / "pg", bindir) if bindir else None
    if pg is not None:
        await asyncio.to_thread(pg.init)
        url = pg.url
    else:
        url = exits.enter_context(scratch_database(args.database_url, f"faults_{plan.name}"))
    stack = Stack(plan.name, root, pg, url, plan.stripe_timeout, plan.sendgrid_timeout)
    stacks.append(stack)  # closed by main whatever happens from here on
    async with MIGRATING:  # Alembic's `op` and `context` are process-wide: one at a time
        await asyncio.to_thread(upgrade_to_head, url)
    await stack.start()
    relay = Relay(stack.ports["relay"], stack.url("api"), SECRET)
    await relay.start()
    try:
        log(f"{plan.name}: stack up (logs in {root})")
        from benchmarks.faults_cases import SendgridStandin, StripeStandin

        client = await temporal_client(stack.temporal_address)
        ctx = Ctx(stack, client, StripeStandin(stack.url("stripe")),
                  SendgridStandin(stack.url("sendgrid")), relay, args.cases,
                  wanted=frozenset(args.scenario))  # fmt: skip
        await plan.drive(ctx)
        await wait_closed(ctx, time.monotonic() + args.case_seconds)
        await relay.drain(30)
        for task in ctx.players:
            task.cancel()
        swept = await sweep_left_claims(client, url, stack.url("sendgrid"))
        log(f"{plan.name}: claim sweep settled {len(swept)}: {', '.join(swept) or '-'}")
        log(f"{plan.name}: measuring")
        rows = []
        for scenario, cases in ctx.cases.items():
            row = await measure(scenario, cases, client, ctx.stripe, ctx.sendgrid, url,
                                list(relay.deliveries.values()))  # fmt: skip
            row.notes[:0] = ctx.notes.get(scenario, [])
            rows.append(row)
        return rows
    finally:
        await relay.close()


async def run(args: argparse.Namespace, base: Path, stacks: list[Stack]) -> list[Row]:
    plans = [p for p in PLANS if set(p.scenarios) & set(args.scenario)]
    with contextlib.ExitStack() as exits:
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(run_stack(p, args, base, stacks, exits) for p in plans)),
                timeout=TOTAL_SECONDS - 60,
            )
        finally:
            # Stop the stacks before dropping any scratch database they still use.
            await asyncio.gather(*(asyncio.to_thread(s.close) for s in stacks))
    order = {name: i for i, name in enumerate(ALL)}
    return sorted((r for rows in results for r in rows), key=lambda r: order[r.scenario])


def report(rows: list[Row]) -> None:
    print(table(rows))
    for row in rows:
        lines = row.evidence[:EVIDENCE_LINES] + row.notes[:EVIDENCE_LINES]
        if lines:
            print(f"\n{row.scenario}:")
            print("\n".join(f"  - {line}" for line in lines))
            more = len(row.evidence) + len(row.notes) - len(lines)
            if more > 0:
                print(f"  … {more} more")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly like Ctrl-C


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40, help="cases per scenario (default 40)")
    parser.add_argument("--scenario", action="append", choices=ALL, help="repeatable; default all")
    parser.add_argument("--case-seconds", type=float, default=330.0,
                        help="deadline for the cases to close once created")  # fmt: skip
    default_url = (
        os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--database-url", default=default_url,
                        help="server for scratch databases when pg_ctl is missing")  # fmt: skip
    parser.add_argument("--no-own-postgres", action="store_true",
                        help="use --database-url even with pg_ctl (no outage)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    args = parser.parse_args()
    args.scenario = args.scenario or ALL
    base = Path(tempfile.mkdtemp(prefix="dunning-faults-"))
    base.chmod(0o755)  # the PostgreSQL clusters run as the postgres user when we are root
    stacks: list[Stack] = []
    signal.signal(signal.SIGTERM, _interrupt)
    code = 1
    try:
        rows = asyncio.run(run(args, base, stacks))
        report(rows)
        code = 1 if any(r.losses for r in rows) else 0
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        code = 130
    except Exception as err:
        traceback.print_exc()
        print(f"benchmark failed: {type(err).__name__}: {err}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
        for stack in stacks:
            stack.close()  # idempotent: already closed unless run() was cut short
        for pg_dir in base.glob("*/pg"):
            shutil.rmtree(pg_dir, ignore_errors=True)
        if code == 0 and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"logs: {base}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
