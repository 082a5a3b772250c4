"""Who may use the codec server: the static bearer token, or an OIDC access token.

A Temporal UI behind single sign-on forwards the signed-in user's access token to the codec
server (`TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true`) as `Authorization: Bearer <JWT>`. With
`DUNNING_CODEC_OIDC_ISSUER` and `DUNNING_CODEC_OIDC_AUDIENCE` set, such a token is accepted when
the issuer's published keys verify its signature (asymmetric algorithms only), it was issued by
that issuer for that audience, and it has not expired. The keys are found through the issuer's
discovery document (`{issuer}/.well-known/openid-configuration`, OpenID Connect Discovery 1.0)
unless `DUNNING_CODEC_OIDC_JWKS_URL` names them, and are fetched again when a token names a key
id not seen yet (the issuer rotated its keys).
"""

from __future__ import annotations

import secrets
import threading

import httpx
import jwt

__all__ = ["AccessCheck", "IdentityProviderUnavailable", "OidcVerifier"]

# Never "none" or an HMAC: a symmetric algorithm would let a public key serve as the secret.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
LEEWAY_SECONDS = 30  # clock skew between the identity provider and this server
HTTP_TIMEOUT = 5.0


class IdentityProviderUnavailable(Exception):
    """The issuer's discovery document or keys could not be fetched (answered 503)."""


class OidcVerifier:
    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def valid(self, token: str) -> bool:
        """True for a token the issuer signed for our audience and that is still valid."""
        try:
            key = self._client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as err:
            raise IdentityProviderUnavailable(f"the issuer's keys: {err}") from err
        except jwt.PyJWTError:  # malformed, or signed with a key the issuer never published
            return False
        try:
            jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return False
        return True

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(
                    self.jwks_url or self._discover(), timeout=HTTP_TIMEOUT
                )
            return self._keys

    def _discover(self) -> str:
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            return str(response.json()["jwks_uri"])
        except (httpx.HTTPError, ValueError, KeyError) as err:
            raise IdentityProviderUnavailable(f"discovery at {url}: {err}") from err


class AccessCheck:
    """The static token (constant-time comparison) and, when configured, OIDC tokens."""

    def __init__(self, token: str, oidc: OidcVerifier | None) -> None:
        self.token = token
        self.oidc = oidc

    @property
    def open(self) -> bool:
        return not self.token and self.oidc is None

    def allows(self, presented: str) -> bool:
        if not presented:
            return False
        if self.token and secrets.compare_digest(presented.encode(), self.token.encode()):
            return True
        return self.oidc is not None and presented.count(".") == 2 and self.oidc.valid(presented)
