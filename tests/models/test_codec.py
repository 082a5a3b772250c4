"""models/codec.py and the data converter `connect()` builds: AES-256-GCM with a keyring."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

from models.codec import (
    ENCODING,
    KEY_ID,
    DecryptionError,
    EncryptionCodec,
    KeyringError,
    UnknownKeyError,
    new_key,
    parse_keyring,
)
from models.dunning import DunningInput
from models.settings import EncryptionConfigError, Settings
from models.temporal import DEV_KEY_FILE, converter_for, data_converter, resolve_keyring

K1, K2 = new_key(), new_key()
URLSAFE = base64.urlsafe_b64encode(b"\xfb" * 32).decode()  # '-' and '_': not standard
SECRET = b'{"email": "ada@example.org", "name": "Ada Lovelace"}'


def _payload(data: bytes = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def _settings(**values: object) -> Settings:
    base: dict[str, object] = {"dunning_encryption_keys": "", "dunning_env": "production"}
    return Settings(**{**base, **values}, _env_file=None)  # type: ignore[arg-type]


async def test_round_trip_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec(parse_keyring(f"k1:{K1}"))
    (encrypted,) = await codec.encode([_payload()])
    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID] == b"k1"
    assert b"ada" not in encrypted.SerializeToString()
    (decrypted,) = await codec.decode([encrypted])
    assert decrypted == _payload()
    # A random nonce per payload: the same value never encrypts to the same bytes.
    (again,) = await codec.encode([_payload()])
    assert again.data != encrypted.data


async def test_unencrypted_payloads_pass_through_decode() -> None:
    # Histories recorded before encryption was switched on still replay.
    codec = EncryptionCodec(parse_keyring(f"k1:{K1}"))
    assert await codec.decode([_payload()]) == [_payload()]


async def test_unknown_key_id_fails_naming_the_id() -> None:
    (encrypted,) = await EncryptionCodec(parse_keyring(f"old:{K1}")).encode([_payload()])
    reader = EncryptionCodec(parse_keyring(f"k2:{K2}"))
    with pytest.raises(UnknownKeyError, match="'old'"):
        await reader.decode([encrypted])


async def test_tampered_ciphertext_fails() -> None:
    codec = EncryptionCodec(parse_keyring(f"k1:{K1}"))
    (encrypted,) = await codec.encode([_payload()])
    flipped = bytearray(encrypted.data)
    flipped[-1] ^= 1
    tampered = Payload(metadata=dict(encrypted.metadata), data=bytes(flipped))
    with pytest.raises(DecryptionError, match="'k1'"):
        await codec.decode([tampered])
    # Relabelling a payload with another key id fails too (the id is authenticated).
    both = EncryptionCodec(parse_keyring(f"k1:{K1},k2:{K1}"))
    relabelled = Payload(metadata={**encrypted.metadata, KEY_ID: b"k2"}, data=encrypted.data)
    with pytest.raises(DecryptionError):
        await both.decode([relabelled])


async def test_rotation_old_payloads_decode_and_new_ones_use_the_new_primary() -> None:
    (old,) = await EncryptionCodec(parse_keyring(f"k1:{K1}")).encode([_payload()])
    rotated = EncryptionCodec(parse_keyring(f"k2:{K2},k1:{K1}"))
    assert await rotated.decode([old]) == [_payload()]
    (new,) = await rotated.encode([_payload()])
    assert new.metadata[KEY_ID] == b"k2"
    # Once k1 is retired, only payloads written under it become unreadable, loudly.
    retired = EncryptionCodec(parse_keyring(f"k2:{K2}"))
    assert await retired.decode([new]) == [_payload()]
    with pytest.raises(UnknownKeyError, match="'k1'"):
        await retired.decode([old])


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", "is empty"),
        (f"k1:{K1},", "entry 2 is empty"),
        (K1, "entry 1 has no 'id:' prefix"),
        (f"k1:{K1},k2", "entry 2 has no 'id:' prefix"),
        (f"k 1:{K1}", "entry 1: key id must be"),
        (f"k1:{K1},k1:{K2}", "entry 2 (id 'k1'): duplicate key id"),
        ("k1:not*base64", "entry 1 (id 'k1'): key is not standard base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "key is 5 bytes, expected 32"),
        (f"k1:{URLSAFE}", "not standard base64"),
    ],
)
def test_malformed_keyrings_name_the_entry_never_the_key(keys: str, message: str) -> None:
    with pytest.raises(KeyringError) as caught:
        parse_keyring(keys)
    assert message in str(caught.value)
    assert K1 not in str(caught.value) and K2 not in str(caught.value)


def test_keyring_repr_shows_no_key_material() -> None:
    keyring = parse_keyring(f"k2:{K2},k1:{K1}")
    assert keyring.primary == "k2" and keyring.ids == ["k2", "k1"]
    raw = base64.b64decode(K1)
    assert repr(raw) not in repr(keyring) and K1 not in repr(keyring)


def test_production_without_keys_refuses_to_start() -> None:
    with pytest.raises(EncryptionConfigError, match="DUNNING_ENCRYPTION_KEYS is not set"):
        data_converter(_settings())
    with pytest.raises(EncryptionConfigError, match="entry 1"):
        data_converter(_settings(dunning_encryption_keys="k1:nope"))
    with pytest.raises(EncryptionConfigError, match="unset one"):
        data_converter(_settings(dunning_encryption_keys=f"k1:{K1}", dunning_encryption="off"))


def test_off_means_no_codec_and_keys_mean_codec_and_encoded_failures() -> None:
    assert data_converter(_settings(dunning_encryption="OFF")) is pydantic_data_converter
    converter = data_converter(_settings(dunning_encryption_keys=f"k1:{K1}"))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    # Still the pydantic converter underneath: models in, models out.
    assert type(converter.payload_converter) is type(pydantic_data_converter.payload_converter)


def test_dev_mode_uses_the_dev_key_file_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dev = _settings(dunning_env="dev")
    assert resolve_keyring(dev) is None  # no dev stack here: dev runs unencrypted
    DEV_KEY_FILE.parent.mkdir()
    DEV_KEY_FILE.write_text(f"dev:{K1}\n", encoding="utf-8")
    keyring = resolve_keyring(dev)
    assert keyring is not None and keyring.ids == ["dev"]
    # Production never falls back to a dev key.
    with pytest.raises(EncryptionConfigError):
        resolve_keyring(_settings())


async def test_models_survive_the_encrypted_converter() -> None:
    converter = converter_for(parse_keyring(f"k1:{K1}"))
    value = DunningInput(invoice_id="in_1", customer_id="cus_1", amount_due=1200, currency="eur")
    (payload,) = await converter.encode([value])
    assert b"cus_1" not in payload.SerializeToString()
    assert await converter.decode([payload], [DunningInput]) == [value]
