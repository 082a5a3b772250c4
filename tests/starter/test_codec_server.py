"""starter/codec_server.py: Temporal's codec server protocol, auth and CORS for the UI."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.testing import WorkflowEnvironment

from models.codec import EncryptionCodec, new_key, parse_keyring
from models.dunning import DunningInput
from models.settings import EncryptionConfigError, Settings
from standins.server import BackgroundServer
from starter.cases import start_case
from starter.codec_server import COOKIE, create_app
from tests.conftest import TEST_KEYS

TOKEN = "codec-test-token"
UI = "http://localhost:8233"
KEYS = f"k1:{new_key()}"
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email":"ada@example.org"}')


def _settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "dunning_encryption_keys": KEYS,
        "dunning_codec_token": TOKEN,
        "temporal_ui_url": UI,
        "dunning_env": "production",
    }
    return Settings(**{**base, **values}, _env_file=None)  # type: ignore[arg-type]


@pytest.fixture
def http() -> Iterator[TestClient]:
    with TestClient(create_app(_settings())) as client:
        yield client


def _body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def _payloads(response: Any) -> list[Payload]:
    assert response.status_code == 200, response.text
    return list(json_format.Parse(response.text, Payloads()).payloads)


def _encrypted(payload: Payload, keys: str = KEYS) -> Payload:
    return asyncio.run(EncryptionCodec(parse_keyring(keys)).encode([payload]))[0]


AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}


def test_decode_speaks_proto_json_with_base64_fields(http: TestClient) -> None:
    encrypted = _encrypted(PLAIN)
    body = json.loads(_body(encrypted))
    # The protocol's shape: every bytes field (metadata values, data) is base64.
    assert set(body) == {"payloads"} and set(body["payloads"][0]) == {"metadata", "data"}
    response = http.post("/decode", content=json.dumps(body), headers=AUTH)
    assert response.headers["content-type"].startswith("application/json")
    assert _payloads(response) == [PLAIN]
    # Payloads that were never encrypted come back as they are.
    assert _payloads(http.post("/decode", content=_body(PLAIN), headers=AUTH)) == [PLAIN]


def test_encode_then_decode_and_the_namespace_path_form(http: TestClient) -> None:
    (encoded,) = _payloads(http.post("/encode", content=_body(PLAIN), headers=AUTH))
    assert encoded.metadata["encoding"] == b"binary/encrypted" and b"ada" not in encoded.data
    bearer = {"Authorization": AUTH["Authorization"]}
    response = http.post("/default/decode", content=_body(encoded), headers=bearer)
    assert _payloads(response) == [PLAIN]


def test_other_namespaces_bad_bodies_and_unknown_keys_are_refused(http: TestClient) -> None:
    other = {**AUTH, "X-Namespace": "payments"}
    assert http.post("/decode", content=_body(PLAIN), headers=other).status_code == 403
    assert http.post("/payments/decode", content=_body(PLAIN), headers=AUTH).status_code == 403
    assert http.post("/decode", content="not json", headers=AUTH).status_code == 400
    stranger = _encrypted(PLAIN, f"k9:{new_key()}")
    response = http.post("/decode", content=_body(stranger), headers=AUTH)
    assert response.status_code == 400 and "'k9'" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["none", "wrong", "no-scheme", "basic"],
)
def test_decoding_without_the_token_is_refused(http: TestClient, headers: dict[str, str]) -> None:
    for path in ("/decode", "/encode", "/default/decode"):
        response = http.post(path, content=_body(_encrypted(PLAIN)), headers=headers)
        assert response.status_code == 401, path
        assert "ada" not in response.text


def test_browser_sign_in_sets_a_cookie_the_ui_sends(http: TestClient) -> None:
    assert http.post("/login", data={"token": "wrong"}).status_code == 401
    response = http.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == UI
    assert "httponly" in response.headers["set-cookie"].lower()
    assert http.cookies.get(COOKIE) == TOKEN
    decoded = http.post(
        "/decode", content=_body(_encrypted(PLAIN)), headers={"X-Namespace": "default"}
    )
    assert _payloads(decoded) == [PLAIN]


@pytest.mark.parametrize("origin", [UI, "http://127.0.0.1:8233"])
def test_cors_preflight_allows_the_uis_origin_with_credentials(
    http: TestClient, origin: str
) -> None:
    response = http.options(
        "/decode",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-namespace"} <= set(
        allowed.replace(" ", "").split(",")
    )
    actual = http.post("/decode", content=_body(PLAIN), headers={**AUTH, "Origin": origin})
    assert actual.headers["access-control-allow-origin"] == origin


def test_cors_refuses_other_origins(http: TestClient) -> None:
    response = http.options(
        "/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_production_needs_a_token_and_dev_may_be_open() -> None:
    with pytest.raises(EncryptionConfigError, match="DUNNING_CODEC_TOKEN"):
        create_app(_settings(dunning_codec_token=""))
    with pytest.raises(EncryptionConfigError, match="encryption is off"):
        create_app(_settings(dunning_encryption_keys="", dunning_encryption="off"))
    with TestClient(create_app(_settings(dunning_codec_token="", dunning_env="dev"))) as http:
        assert _payloads(http.post("/decode", content=_body(_encrypted(PLAIN)))) == [PLAIN]


async def test_the_temporal_cli_reads_a_case_through_the_codec_server(
    dev_env: WorkflowEnvironment,
) -> None:
    """The real client of the protocol: `temporal workflow show --codec-endpoint`."""
    invoice = f"in_codec_{uuid.uuid4().hex[:8]}"
    # The event id travels only in the input (ids and amounts are search attributes).
    case = DunningInput(
        invoice_id=invoice, customer_id="cus_codec", amount_due=4200, currency="eur",
        stripe_event_id="evt_only_in_the_input",
    )  # fmt: skip
    # No worker: the start alone writes the (encrypted) input into the history.
    handle = await start_case(dev_env.client, case, f"codec-{invoice}")
    app = create_app(_settings(dunning_encryption_keys=TEST_KEYS))
    binary = str(Path(sys.executable).parent / "temporal")
    address = dev_env.client.service_client.config.target_host
    with BackgroundServer(app) as codec:

        async def show(*extra: str) -> str:
            process = await asyncio.create_subprocess_exec(
                binary, "workflow", "show", "-w", handle.id, "--address", address,
                "--output", "json", *extra,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            async with asyncio.timeout(30):
                out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return out.decode()

        decoded = await show("--codec-endpoint", codec.url, "--codec-auth", f"Bearer {TOKEN}")
        raw = await show()
    await handle.terminate("test done")
    assert _started_input(decoded)["stripe_event_id"] == "evt_only_in_the_input"
    # Without the codec server the CLI sees only ciphertext.
    encrypted = _started_input(raw)
    assert base64.b64decode(encrypted["metadata"]["encoding"]) == b"binary/encrypted"
    assert "evt_only_in_the_input" not in raw


def _started_input(history_json: str) -> dict[str, Any]:
    """The start event's input as `temporal workflow show --output json` prints it: a JSON
    payload decoded to its value, any other payload as metadata and base64 data."""
    first = json.loads(history_json)["events"][0]
    (payload,) = first["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
    if "metadata" in payload and base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain":
        return dict(json.loads(base64.b64decode(payload["data"])))
    return dict(payload)
