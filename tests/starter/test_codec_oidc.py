"""The codec server accepts the OIDC access token a Temporal UI behind SSO forwards, checked
against the issuer's published keys, and nothing that merely looks like one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.settings import EncryptionConfigError
from standins.server import BackgroundServer, free_port
from starter.codec_server import create_app
from tests.starter.test_codec_server import PLAIN, TOKEN, _body, _encrypted, _payloads, _settings

AUDIENCE = "temporal-ui"


class IdentityProvider:
    """An issuer that publishes its discovery document and signing keys, as OIDC providers do."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.jwks_fetches = 0
        app = FastAPI()
        self.server = BackgroundServer(app)
        self.server.port = free_port()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/keys"}

        @app.get("/keys")
        def keys() -> dict[str, Any]:
            self.jwks_fetches += 1
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    @property
    def issuer(self) -> str:
        return self.server.url

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": "ops-1", "iat": now, "exp": now + 300}
        headers = {"kid": self.kid}
        return jwt.encode({**body, **claims}, key or self.key, algorithm="RS256", headers=headers)


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    with provider.server:
        yield provider


def codec_client(idp: IdentityProvider, **values: Any) -> TestClient:
    settings = _settings(
        dunning_codec_oidc_issuer=idp.issuer, dunning_codec_oidc_audience=AUDIENCE, **values
    )
    return TestClient(create_app(settings))


def decode(client: TestClient, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "X-Namespace": "default"}
    return client.post("/decode", content=_body(_encrypted(PLAIN)), headers=headers)


def test_a_token_the_issuer_signed_for_the_ui_decodes(idp: IdentityProvider) -> None:
    with codec_client(idp) as client:
        assert _payloads(decode(client, idp.token())) == [PLAIN]
        assert _payloads(decode(client, TOKEN)) == [PLAIN]  # the static token still works


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-app"},
        {"iss": "https://elsewhere.example"},
        {"exp": int(time.time()) - 3600},
        {"exp": None},
    ],
    ids=["other audience", "other issuer", "expired", "no expiry"],
)
def test_a_token_for_someone_else_or_out_of_date_is_refused(
    idp: IdentityProvider, claims: dict[str, Any]
) -> None:
    token = idp.token(**{k: v for k, v in claims.items() if v is not None})
    if claims.get("exp", 0) is None:
        now = int(time.time())
        body = {"iss": idp.issuer, "aud": AUDIENCE, "iat": now}
        token = jwt.encode(body, idp.key, algorithm="RS256", headers={"kid": idp.kid})
    with codec_client(idp) as client:
        response = decode(client, token)
    assert response.status_code == 401, response.text
    assert "OIDC" in response.json()["detail"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_signed_with_public_key(idp: IdentityProvider, claims: dict[str, Any]) -> str:
    """The classic forgery: HS256 with the issuer's public key (which anyone has) as secret."""
    pem = idp.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": idp.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def test_forged_tokens_are_refused(idp: IdentityProvider) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": AUDIENCE, "exp": now + 300}
    forged = [
        idp.token(key=stranger),  # signed by a key the issuer never published
        jwt.encode(claims, "", algorithm="none", headers={"kid": idp.kid}),
        hmac_signed_with_public_key(idp, claims),
        "not.a.jwt",
    ]
    with codec_client(idp) as client:
        for token in forged:
            assert decode(client, token).status_code == 401, token


def test_rotated_issuer_keys_are_fetched_again(
    idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyJWT refetches for an unknown key id at most every 30 s (so that made-up key ids cannot
    # make it hammer the issuer); without that pause here, the test needs no clock.
    made = jwt.PyJWKClient.__init__

    def no_cooldown(self: jwt.PyJWKClient, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **{**kwargs, "cooldown_duration": 0})

    monkeypatch.setattr(jwt.PyJWKClient, "__init__", no_cooldown)
    with codec_client(idp) as client:
        assert decode(client, idp.token()).status_code == 200
        idp.key, idp.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), "key-2"
        assert decode(client, idp.token()).status_code == 200
    assert idp.jwks_fetches == 2


def test_an_unreachable_issuer_answers_503_and_an_audience_is_required() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = _settings(dunning_codec_oidc_issuer=down, dunning_codec_oidc_audience=AUDIENCE)
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": "Bearer a.b.c", "X-Namespace": "default"}
        response = client.post("/decode", content=_body(_encrypted(PLAIN)), headers=headers)
    assert response.status_code == 503
    assert "cannot check the access token" in response.json()["detail"]
    with pytest.raises(EncryptionConfigError, match="DUNNING_CODEC_OIDC_AUDIENCE"):
        create_app(_settings(dunning_codec_oidc_issuer=down))
    # OIDC alone is enough for production: no static token needed.
    create_app(
        _settings(
            dunning_codec_token="",
            dunning_codec_oidc_issuer=down,
            dunning_codec_oidc_audience=AUDIENCE,
        )
    )
