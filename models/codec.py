"""AES-256-GCM payload encryption for everything the service writes into Temporal.

Customer names, emails and free-text reasons travel in workflow inputs, activity arguments and
results; Temporal stores them in its history, readable by anyone with the database or a backup.
Every client (worker, API, CLI, benchmarks) encodes payloads with this codec, so the server only
ever holds ciphertext. The Temporal UI and CLI read cases through the codec server
(starter/codec_server.py), which uses the same keyring.

Keyring: DUNNING_ENCRYPTION_KEYS = "k2:<base64 32 bytes>,k1:<...>". The first key encrypts,
every key decrypts, and the key id travels in each payload's metadata, so a key can be added,
made primary and retired later without re-encrypting history (see the README's rotation
procedure). Payloads without our encoding pass through decode untouched: histories recorded
before encryption was switched on still replay.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

__all__ = [
    "ENCODING",
    "KEY_ID",
    "DecryptionError",
    "EncryptionCodec",
    "Keyring",
    "KeyringError",
    "UnknownKeyError",
    "new_key",
    "parse_keyring",
]

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per payload (2^-32 collision bound is far off)
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Binds each ciphertext to its key id: a payload relabelled with another id fails to decrypt.
_AAD_PREFIX = b"dunning-payload:"


class KeyringError(ValueError):
    """DUNNING_ENCRYPTION_KEYS is malformed. The message names the entry, never key bytes."""


class UnknownKeyError(ValueError):
    """A payload was encrypted with a key id the keyring does not hold."""


class DecryptionError(ValueError):
    """A payload failed authentication: tampered with, or encrypted under other key bytes."""


@dataclass(frozen=True)
class Keyring:
    primary: str
    # repr=False: a keyring in a traceback, log line or debugger prints no key material.
    keys: dict[str, bytes] = field(repr=False)

    @property
    def ids(self) -> list[str]:
        return list(self.keys)


def new_key() -> str:
    """A fresh key in the keyring's format (standard base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_keyring(text: str, source: str = "DUNNING_ENCRYPTION_KEYS") -> Keyring:
    """Parse `id:key,id:key`; the first entry is the primary (encrypting) key."""
    keys: dict[str, bytes] = {}
    entries = [entry.strip() for entry in text.split(",")]
    if not any(entries):
        raise KeyringError(f"{source} is empty: expected id:key pairs separated by commas")
    for number, entry in enumerate(entries, start=1):
        where = f"{source} entry {number}"
        if not entry:
            raise KeyringError(f"{where} is empty (a stray comma?)")
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep:
            # The entry may be a bare key: describe it, never echo it.
            raise KeyringError(f"{where} has no 'id:' prefix (expected id:base64key)")
        if not _KEY_ID_PATTERN.fullmatch(key_id):
            raise KeyringError(f"{where}: key id must be 1-64 letters, digits, '_', '.' or '-'")
        where = f"{where} (id {key_id!r})"
        if key_id in keys:
            raise KeyringError(f"{where}: duplicate key id")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"{where}: key is not standard base64") from None
        if len(key) != KEY_BYTES:
            raise KeyringError(f"{where}: key is {len(key)} bytes, expected {KEY_BYTES}")
        keys[key_id] = key
    return Keyring(primary=next(iter(keys)), keys=keys)


class EncryptionCodec(PayloadCodec):
    """Each payload becomes one encrypted payload: nonce + AES-GCM(serialized payload)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keyring.primary
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), _AAD_PREFIX + key_id.encode()
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption (or by an unkeyed client): as is
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"payload encrypted with key id {key_id!r}, which DUNNING_ENCRYPTION_KEYS does"
                f" not hold (it has: {', '.join(self.keyring.ids)}); add that key back"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, _AAD_PREFIX + key_id.encode())
        except InvalidTag:
            raise DecryptionError(
                f"payload under key id {key_id!r} failed authentication: tampered with,"
                " or that id holds other key bytes than the ones it was encrypted with"
            ) from None
        return Payload.FromString(plain)
