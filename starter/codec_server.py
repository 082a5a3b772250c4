"""The codec server: the Temporal UI and CLI read encrypted cases through it.

Temporal's codec server protocol: `POST /decode` and `POST /encode` (also under a namespace
segment, `/{namespace}/decode`, for the CLI's `--codec-endpoint` templating) take and return
the proto3 JSON of `Payloads` — `{"payloads": [{"metadata": {"encoding": "<base64>"},
"data": "<base64>"}]}` — with the namespace in the `X-Namespace` header. The UI calls it from
the browser, so CORS allows the UI's origin with credentials and the headers it sends.

Who may decode: a request carrying `Authorization: Bearer <DUNNING_CODEC_TOKEN>` (the
`temporal` CLI's `--codec-auth`), or the OIDC access token a UI behind single sign-on forwards
(checked against the issuer's keys: codec_auth.py), or a browser that signed in once at
`/login` (an HttpOnly cookie the UI sends when "include cross-origin credentials" is on).
Without either the server is open, which only dev mode allows.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from models.codec import EncryptionCodec
from models.settings import EncryptionConfigError, Settings, get_settings
from models.temporal import resolve_keyring
from starter.codec_auth import AccessCheck, IdentityProviderUnavailable, OidcVerifier

__all__ = ["COOKIE", "create_app", "ui_origins"]

COOKIE = "dunning_codec"
MAX_BODY_BYTES = 8 * 1024 * 1024  # a whole history page of payloads; more is not a UI call

_LOGIN_PAGE = """<!doctype html><title>Dunning codec server</title>
<form method="post" action="login"><p>Codec server token (DUNNING_CODEC_TOKEN):
<input name="token" type="password" autocomplete="off" autofocus>
<button>Sign in</button></p><p>{message}</p></form>"""


def ui_origins(ui_url: str) -> list[str]:
    """The UI's origin as configured, plus its localhost/127.0.0.1 twin: browsers send
    whichever host was typed."""
    parts = urlsplit(ui_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    twins = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}
    host = parts.hostname or ""
    if host in twins:
        port = f":{parts.port}" if parts.port else ""
        return [origin, f"{parts.scheme}://{twins[host]}{port}"]
    return [origin]


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    issuer, audience = settings.dunning_codec_oidc_issuer, settings.dunning_codec_oidc_audience
    if not issuer:
        return None
    if not audience:  # a token for any application of the issuer must not open the data
        raise EncryptionConfigError(
            "DUNNING_CODEC_OIDC_ISSUER is set without DUNNING_CODEC_OIDC_AUDIENCE: name the"
            " audience the UI's access tokens are issued for"
        )
    return OidcVerifier(issuer, audience, settings.dunning_codec_oidc_jwks_url or None)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    keyring = resolve_keyring(settings)
    if keyring is None:
        raise EncryptionConfigError("encryption is off (no keys): the codec server has no use")
    token = settings.dunning_codec_token
    access = AccessCheck(token, oidc_verifier(settings))
    if access.open and not settings.dev_mode:
        raise EncryptionConfigError(
            "DUNNING_CODEC_TOKEN is not set: the codec server would decode customer data for"
            " anyone (set it or DUNNING_CODEC_OIDC_ISSUER, or DUNNING_ENV=dev for local use)"
        )
    codec = EncryptionCodec(keyring)
    namespace = settings.temporal_namespace
    app = FastAPI(title="Dunning codec server", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=ui_origins(settings.temporal_ui_url),
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        max_age=600,
    )

    # A plain function: FastAPI runs it in its thread pool, where fetching the issuer's keys
    # does not hold up the event loop.
    def authorized(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
        if access.open:
            return
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            presented = request.cookies.get(COOKIE, "")
        try:
            allowed = access.allows(presented.strip())
        except IdentityProviderUnavailable as err:
            raise HTTPException(503, f"cannot check the access token: {err}") from None
        if not allowed:
            raise HTTPException(
                401, "a bearer token is required: DUNNING_CODEC_TOKEN or a valid OIDC access token"
            )

    async def payloads_of(request: Request, requested: str | None) -> Payloads:
        if requested and requested != namespace:
            raise HTTPException(403, f"this codec server serves namespace {namespace!r} only")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, "request body too large")
        try:
            return json_format.Parse(body, Payloads())
        except json_format.ParseError as err:
            raise HTTPException(400, f"expected {{'payloads': [...]}}: {err}") from None

    def answer(payloads: Payloads) -> Response:
        text = json_format.MessageToJson(payloads, indent=None)
        return Response(text, media_type="application/json")

    async def decode(request: Request, requested: str | None) -> Response:
        payloads = await payloads_of(request, requested)
        try:
            decoded = await codec.decode(payloads.payloads)
        except ValueError as err:  # unknown key id, tampered payload: name it, loudly
            return JSONResponse({"detail": str(err)}, status_code=400)
        return answer(Payloads(payloads=decoded))

    async def encode(request: Request, requested: str | None) -> Response:
        payloads = await payloads_of(request, requested)
        return answer(Payloads(payloads=await codec.encode(payloads.payloads)))

    guarded = [Depends(authorized)]

    @app.post("/decode", dependencies=guarded)
    async def decode_route(
        request: Request, x_namespace: Annotated[str | None, Header()] = None
    ) -> Response:
        return await decode(request, x_namespace)

    @app.post("/encode", dependencies=guarded)
    async def encode_route(
        request: Request, x_namespace: Annotated[str | None, Header()] = None
    ) -> Response:
        return await encode(request, x_namespace)

    @app.post("/{path_namespace}/decode", dependencies=guarded)
    async def decode_in_namespace(request: Request, path_namespace: str) -> Response:
        return await decode(request, path_namespace)

    @app.post("/{path_namespace}/encode", dependencies=guarded)
    async def encode_in_namespace(request: Request, path_namespace: str) -> Response:
        return await encode(request, path_namespace)

    @app.get("/login", response_class=HTMLResponse)
    async def login_page() -> str:
        return _LOGIN_PAGE.format(message="")

    @app.post("/login")
    async def login(request: Request) -> Response:
        # Parsed by hand: one field does not justify python-multipart as a dependency.
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        token_field = (form.get("token") or [""])[0]
        if not token or not secrets.compare_digest(token_field.encode(), token.encode()):
            page = _LOGIN_PAGE.format(message="Wrong token." if token else "No token needed.")
            return HTMLResponse(page, status_code=401 if token else 200)
        response = RedirectResponse(settings.temporal_ui_url, status_code=303)
        # Lax is enough: the UI and this server are one site (ports do not count), so the
        # browser sends the cookie with the UI's credentialed cross-origin calls.
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https"
        )
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
