"""The support HTTP API: `/api/cases` to list and read cases and to act on them.

Same operations as the `dunning` support commands, through the same service layer: every action
is one of the workflow's Updates, so its validator decides and a rejected action leaves no
trace. Authentication is one shared bearer token, DUNNING_SUPPORT_TOKEN; who acted (`by`) and
why (`reason`) go to the audit log (the ledger's `support_actions` table).

Actions take an optional `Idempotency-Key` header (printable ASCII, at most 200 characters;
one is generated when absent and echoed in the answer's header): a retry with the same key and
body gets the first answer instead of acting twice.

Errors are `{"error": message}`: 400 bad Idempotency-Key, 401 bad token, 404 no such case, 422
rejected by the validator or a malformed request, 503 Temporal unreachable (the app's handler).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError

from models.dunning import (
    MAX_BY,
    MAX_REASON,
    CaseStatus,
    DunningState,
    GrantGraceResult,
    PauseResult,
    ResumeResult,
    RetryNowResult,
    StopResult,
    SupportActionResult,
)
from models.settings import Settings
from policies.durations import parse_duration
from starter.deps import (
    TemporalUnavailable,
    bounded,
    get_settings_from,
    get_temporal_client,
    request_timeout,
)
from starter.support.api_errors import CASE_ERRORS, ERRORS, ErrorBody, SupportError, SupportRoute
from starter.support.service import (
    Action,
    BadRequestId,
    CaseSummary,
    action_input,
    case_status,
    list_cases,
    list_query,
    request_id_or_new,
    run_action,
)

log = logging.getLogger("dunning.support")


class GraceRequest(BaseModel):
    days: int = Field(description="days to add; the policy limits each grant and the total")
    reason: str = Field(max_length=MAX_REASON, description="why, for the audit log")
    by: str = Field(max_length=MAX_BY, description="who grants it, for the audit log")


class ReasonRequest(BaseModel):
    reason: str = Field(max_length=MAX_REASON, description="why, for the audit log")
    by: str = Field(max_length=MAX_BY, description="who does it, for the audit log")


class ByRequest(BaseModel):
    by: str = Field(max_length=MAX_BY, description="who does it, for the audit log")


# auto_error=False: a missing header reaches our check, which answers 401 in our shape.
_bearer = HTTPBearer(auto_error=False, description="DUNNING_SUPPORT_TOKEN")


async def idempotency_key(
    response: Response,
    key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="Send the same key when retrying (e.g. after a 503): the action is applied"
        " once and the retry gets the first answer. Printable ASCII, at most 200 characters;"
        " generated when absent. Echoed in the answer's Idempotency-Key header.",
    ),
) -> str:
    try:
        checked = request_id_or_new(key)
    except BadRequestId as err:
        raise SupportError(400, f"Idempotency-Key: {err}") from None
    response.headers["Idempotency-Key"] = checked
    return checked


def support_auth(settings: Settings | None = None) -> Callable[..., Awaitable[None]]:
    """The support token check; the token comes from `settings`, else the app's settings."""

    async def require_token(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> None:
        current = settings or get_settings_from(request)
        token = current.dunning_support_token
        if not token and current.dev_mode:
            return  # install_support_routes allowed (and logged) this
        given = credentials.credentials if credentials else ""
        # Fail closed without a token; compare_digest keeps the comparison constant-time.
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            raise SupportError(
                401, "missing or wrong support token", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_token


def support_router(settings: Settings | None = None) -> APIRouter:
    """The `/api/cases` routes."""
    router = APIRouter(
        prefix="/api/cases",
        tags=["support"],
        route_class=SupportRoute,
        dependencies=[Depends(support_auth(settings))],
        responses=ERRORS,
    )

    async def act(
        request: Request,
        client: Client,
        invoice_id: str,
        action: Action,
        body: BaseModel,
        key: str,
    ) -> SupportActionResult:
        payload = action_input(action, **body.model_dump())
        try:
            call = run_action(client, invoice_id, action, payload, key)
            return await bounded(call, request_timeout(request))
        except (TemporalUnavailable, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            # The Update may have been admitted and still run once a worker picks it up.
            raise SupportError(
                503,
                "no answer from Temporal or the case's worker in time; the action may still"
                " take effect: retry with the same Idempotency-Key to apply it at most once",
                headers={"Idempotency-Key": key},
            ) from err

    @router.get(
        "",
        response_model=list[CaseSummary],
        summary="List cases (Temporal visibility)",
        responses={422: {"model": ErrorBody, "description": "Bad filter"}},
    )
    async def list_route(
        request: Request,
        status: CaseStatus | None = Query(None, description="only cases with this status"),
        customer: str | None = Query(None, description="only this Stripe customer's cases"),
        due_within: str | None = Query(
            None, description="only running cases whose next action is due within, e.g. 24h"
        ),
        client: Client = Depends(get_temporal_client),
    ) -> list[CaseSummary]:
        try:
            window = parse_duration(due_within) if due_within else None
            query = list_query(status.value if status else None, customer, window)
        except ValueError as err:
            raise SupportError(422, str(err)) from None
        return await bounded(list_cases(client, query), request_timeout(request))

    @router.get(
        "/{invoice_id}",
        response_model=DunningState,
        summary="A case's state",
        responses=CASE_ERRORS,
    )
    async def status_route(
        request: Request, invoice_id: str, client: Client = Depends(get_temporal_client)
    ) -> DunningState:
        return await bounded(case_status(client, invoice_id), request_timeout(request))

    @router.post(
        "/{invoice_id}/grace",
        response_model=GrantGraceResult,
        summary="Grant grace days",
        description="Moves the remaining schedule and the final action `days` later.",
        responses=CASE_ERRORS,
    )
    async def grace_route(
        request: Request,
        invoice_id: str,
        body: GraceRequest,
        client: Client = Depends(get_temporal_client),
        key: str = Depends(idempotency_key),
    ) -> SupportActionResult:
        return await act(request, client, invoice_id, "grace", body, key)

    @router.post(
        "/{invoice_id}/pause",
        response_model=PauseResult,
        summary="Pause: no charges or emails until resumed",
        responses=CASE_ERRORS,
    )
    async def pause_route(
        request: Request,
        invoice_id: str,
        body: ReasonRequest,
        client: Client = Depends(get_temporal_client),
        key: str = Depends(idempotency_key),
    ) -> SupportActionResult:
        return await act(request, client, invoice_id, "pause", body, key)

    @router.post(
        "/{invoice_id}/resume",
        response_model=ResumeResult,
        summary="Resume: deadlines move later by the time paused",
        responses=CASE_ERRORS,
    )
    async def resume_route(
        request: Request,
        invoice_id: str,
        body: ByRequest,
        client: Client = Depends(get_temporal_client),
        key: str = Depends(idempotency_key),
    ) -> SupportActionResult:
        return await act(request, client, invoice_id, "resume", body, key)

    @router.post(
        "/{invoice_id}/retry-now",
        response_model=RetryNowResult,
        summary="Retry the charge now, outside the schedule",
        responses=CASE_ERRORS,
    )
    async def retry_now_route(
        request: Request,
        invoice_id: str,
        body: ByRequest,
        client: Client = Depends(get_temporal_client),
        key: str = Depends(idempotency_key),
    ) -> SupportActionResult:
        return await act(request, client, invoice_id, "retry-now", body, key)

    @router.post(
        "/{invoice_id}/stop",
        response_model=StopResult,
        summary="Stop dunning: no further charges, emails or final action",
        responses=CASE_ERRORS,
    )
    async def stop_route(
        request: Request,
        invoice_id: str,
        body: ReasonRequest,
        client: Client = Depends(get_temporal_client),
        key: str = Depends(idempotency_key),
    ) -> SupportActionResult:
        return await act(request, client, invoice_id, "stop", body, key)

    return router


def install_support_routes(app: FastAPI, settings: Settings) -> None:
    """Add `/api/cases`; refuses to serve it unauthenticated outside dev mode."""
    if not settings.dunning_support_token:
        if not settings.dev_mode:
            raise RuntimeError(
                "DUNNING_SUPPORT_TOKEN is not set: refusing to serve the support API"
                " (/api/cases) without authentication; set it, or DUNNING_ENV=dev for local use"
            )
        log.warning(
            "DUNNING_SUPPORT_TOKEN is not set: the support API (/api/cases) is open to anyone"
            " who can reach it (DUNNING_ENV=%s)",
            settings.dunning_env,
        )
    app.include_router(support_router(settings))
    # Imported here: it builds on this module's token check and error shapes.
    from starter.support.preferences_api import preferences_router

    app.include_router(preferences_router(settings))
