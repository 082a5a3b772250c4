"""The one way to reach Temporal: `connect()` and search attribute registration.

Shared by the worker, the API, the CLI, the dev stack and the benchmarks, so every client
uses the same data converter (pydantic models in and out). It lives beside the models, not in
`worker.py`, so that the HTTP and CLI layers never import the worker (an import-linter
contract). The search attribute keys are passed in: `models` does not import `workflows`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from models.settings import Settings

__all__ = ["connect", "ensure_search_attributes", "exit_process"]

_INDEXED_TYPE = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def connect(settings: Settings) -> Client:
    """A client for TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE; raises RuntimeError if unreachable."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


async def ensure_search_attributes(
    client: Client, namespace: str, keys: Iterable[SearchAttributeKey[Any]]
) -> list[str]:
    """Register missing custom search attributes; returns the names added (idempotent)."""
    wanted = {key.name: _INDEXED_TYPE[key.indexed_value_type] for key in keys}
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as err:
        # The time-skipping test server cannot list, only add; adding one at a time below
        # tells us what exists through ALREADY_EXISTS.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    added = []
    for name, indexed_type in wanted.items():
        if name in known:
            continue
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace, search_attributes={name: indexed_type}
                )
            )
            added.append(name)
        except RPCError as err:
            # Another worker registering at the same moment is fine.
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return added


def exit_process(code: int) -> NoReturn:
    """Leave the process now with `code`, skipping interpreter finalization.

    The SDK's Rust runtime keeps threads that can call back into Python while the interpreter
    finalizes, which aborts with `Fatal Python error: PyGILState_Release ... finalizing` (exit
    134) after the work is done (https://github.com/temporalio/sdk-python/issues/300). Processes
    that used a client (the CLI, the worker) end here once their work, `finally` blocks and
    context managers are done: buffered output is flushed first, logging handlers closed.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            pass
    os._exit(code)
