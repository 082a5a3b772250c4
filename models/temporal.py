"""The one way to reach Temporal: `connect()` and search attribute registration.

Shared by the worker, the API, the CLI, the dev stack and the benchmarks, so every client
uses the same data converter: pydantic models in and out, payloads and failure messages
encrypted with the keyring (models/codec.py). It lives beside the models, not in
`worker.py`, so that the HTTP and CLI layers never import the worker (an import-linter
contract). The search attribute keys are passed in: `models` does not import `workflows`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RPCError, RPCStatusCode

from models.codec import EncryptionCodec, Keyring, KeyringError, parse_keyring
from models.settings import EncryptionConfigError, Settings

__all__ = [
    "DEV_KEY_FILE",
    "EncryptionConfigError",
    "connect",
    "converter_for",
    "data_converter",
    "ensure_search_attributes",
    "exit_process",
    "resolve_keyring",
]

# Written once by `dunning dev` (mode 0600) when DUNNING_ENCRYPTION_KEYS is unset; dev-mode
# processes beside it (`DUNNING_ENV=dev dunning status ...`) read it too.
DEV_KEY_FILE = Path(".dev") / "encryption-keys"

_INDEXED_TYPE = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


def resolve_keyring(settings: Settings) -> Keyring | None:
    """The keyring to use, or None for no encryption (DUNNING_ENCRYPTION=off, or dev mode
    without a dev key). Production without keys is refused rather than silently writing
    customer data in clear text."""
    keys = settings.dunning_encryption_keys.strip()
    if keys and settings.dunning_encryption == "off":
        raise EncryptionConfigError(
            "DUNNING_ENCRYPTION=off but DUNNING_ENCRYPTION_KEYS is set: unset one of them"
        )
    if settings.dunning_encryption == "off":
        return None
    try:
        if keys:
            return parse_keyring(keys)
        if settings.dev_mode:
            if DEV_KEY_FILE.exists():
                return parse_keyring(DEV_KEY_FILE.read_text(encoding="utf-8"), str(DEV_KEY_FILE))
            return None
    except KeyringError as err:
        raise EncryptionConfigError(str(err)) from None
    raise EncryptionConfigError(
        "DUNNING_ENCRYPTION_KEYS is not set, so customer data would reach Temporal in clear"
        " text: set it (`dunning encryption-key` prints a new key), or DUNNING_ENCRYPTION=off"
        " to run unencrypted on purpose (DUNNING_ENV=dev uses the key `dunning dev` made)"
    )


def converter_for(keyring: Keyring | None) -> DataConverter:
    """The pydantic data converter, encrypting payloads and failure messages when keyed."""
    if keyring is None:
        return pydantic_data_converter
    # Failure messages and stack traces can quote customer data (a provider's error about
    # an address): with encoded attributes they travel as an encrypted payload too.
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    return converter_for(resolve_keyring(settings))


async def connect(settings: Settings) -> Client:
    """A client for TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE with the keyring's data converter.

    Raises EncryptionConfigError before connecting if the keys are wrong or missing, and
    RuntimeError if Temporal is unreachable."""
    converter = data_converter(settings)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=converter,
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
