"""Temporal access for the fault benchmark, tolerant of `ensure_search_attributes` moving.

The helper lives in `worker.py` today and moves to `models/temporal.py` (where it takes the keys
as an argument); the benchmark uses whichever this checkout has.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from workflows.search_attributes import ALL_KEYS

_RUNTIME: Runtime | None = None


def _quiet_runtime() -> Runtime:
    # While a server is down on purpose the SDK core warns about every retried call; the
    # benchmark expects those retries and measures their outcome instead.
    global _RUNTIME
    if _RUNTIME is None:
        quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
        _RUNTIME = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))
    return _RUNTIME


async def temporal_client(address: str) -> Client:
    """Raises RuntimeError while the server does not answer (as `Client.connect` does)."""
    return await Client.connect(
        address,
        namespace="default",
        data_converter=pydantic_data_converter,
        runtime=_quiet_runtime(),
    )


def _ensure() -> Callable[..., Awaitable[list[str]]]:
    try:
        from models.temporal import ensure_search_attributes
    except ImportError:
        from worker import ensure_search_attributes  # type: ignore[attr-defined,no-redef,unused-ignore]
    return ensure_search_attributes  # type: ignore[return-value,unused-ignore]


async def register_search_attributes(address: str) -> list[str]:
    client = await temporal_client(address)
    ensure = _ensure()
    args: list[Any] = [client, "default"]
    if len(inspect.signature(ensure).parameters) >= 3:
        args.append(ALL_KEYS)  # the models/ version: models does not import workflows
    return await ensure(*args)
