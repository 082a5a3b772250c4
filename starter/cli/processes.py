"""Child processes of `dunning dev` (see devstack.py): own process groups, logs, sure stop.

Each child gets its own session so that Ctrl-C in the terminal reaches only `dunning dev`,
which then stops the children in order (API and worker before the Temporal server they talk
to), each with a bounded wait and then SIGKILL to the whole group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from starter.cli import UserError

if TYPE_CHECKING:
    from models.settings import Settings

DEV_DIR = Path(".dev")
HOST = "127.0.0.1"
SECRET_FILE = DEV_DIR / "stripe-webhook-secret"
STOP_SECONDS = 10.0
COLORS = {"temporal": "magenta", "worker": "green", "api": "blue"}


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def require_free(port: int, what: str) -> None:
    if port_open(port):
        raise UserError(
            f"port {port} ({what}) is already in use: is another `dunning dev` running?"
            f" Stop it, or free the port (`lsof -i :{port}`)"
        )


def new_webhook_secret() -> str:
    """A fresh secret per run, kept in .dev so `dunning demo` in another terminal finds it."""
    secret = f"whsec_dev_{secrets.token_urlsafe(24)}"
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    SECRET_FILE.write_text(secret, encoding="utf-8")
    SECRET_FILE.chmod(0o600)
    return secret


def saved_webhook_secret() -> str | None:
    try:
        return SECRET_FILE.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, children get SIGTERM if `dunning dev` itself is killed (kill -9, a crash)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolved here, in the parent: the child must not import or allocate between fork/exec.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_deathsig() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_deathsig


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    tail: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def describe_exit(self) -> str:
        lines = "\n".join(f"    {line}" for line in self.tail[-15:])
        return f"{self.name} exited with code {self.proc.returncode}; log {self.log}\n{lines}"


class Processes:
    """The children of one `dunning dev` run."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.children: list[Child] = []
        self._deathsig = _die_with_parent()

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        echo: bool,
        quiet: re.Pattern[str] | None = None,
    ) -> Child:
        """Start `argv`; its output goes to .dev/logs/<name>.log and, if `echo`, to the
        console, minus the lines `quiet` matches (routine chatter, still in the log)."""
        log = DEV_DIR / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C goes to us, we stop it
            preexec_fn=self._deathsig,  # prepared in the parent: see _die_with_parent
        )
        child = Child(name, proc, log)
        self.children.append(child)
        assert proc.stdout is not None
        threading.Thread(
            target=self._pump,
            args=(child, proc.stdout, echo, quiet),
            name=f"log-{name}",
            daemon=True,
        ).start()
        return child

    def _pump(
        self, child: Child, stream: IO[bytes], echo: bool, quiet: re.Pattern[str] | None
    ) -> None:
        prefix = Text(f"{child.name:>8} │ ", style=COLORS.get(child.name, "white"))
        with child.log.open("w", encoding="utf-8") as log:  # this run only
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                log.write(line + "\n")
                log.flush()
                child.tail = [*child.tail[-49:], line]
                if echo and not (quiet and quiet.search(line)):
                    self.console.print(prefix + Text(line), soft_wrap=True)

    def check(self) -> None:
        for child in self.children:
            if not child.running:
                raise UserError(child.describe_exit())

    def stop(self, names: tuple[str, ...]) -> None:
        """SIGTERM to each named group at once, a bounded wait, then SIGKILL what is left."""
        chosen = [c for c in self.children if c.name in names and c.running]
        for child in chosen:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in chosen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in chosen:
            if child.running:
                self.console.print(f"[yellow]{child.name} did not stop in time: killing it[/]")
            # The group may hold grandchildren even when the leader has exited.
            self._signal(child, signal.SIGKILL)
            child.proc.wait()
            self.console.print(f"[dim]stopped {child.name} (pid {child.proc.pid})[/]")

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)


def wait_until(
    ready: Callable[[], bool], what: str, processes: Processes, timeout: float = 60.0
) -> None:
    """Poll `ready` while watching the children, so a crash is reported at once."""
    deadline = time.monotonic() + timeout
    while not ready():
        processes.check()
        if time.monotonic() > deadline:
            raise UserError(f"{what} was not ready after {timeout:.0f}s; see {DEV_DIR}/logs/")
        time.sleep(0.3)


def reset_dev_databases(console: Console, settings: Settings, temporal_port: int) -> None:
    """`dunning dev --reset`: the dev server's history and the SQLite ledger go."""
    if port_open(temporal_port):
        console.print("[yellow]Temporal is already running on 7233: its history is kept[/]")
    else:
        for path in DEV_DIR.glob("temporal.db*"):
            path.unlink()
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    console.print("[dim]Removed the dev databases (--reset)[/]")
