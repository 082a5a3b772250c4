"""The in-app feed for the merchant's backend: `GET /api/customers/{customer_id}/notifications`
lists a customer's notices (newest first) and `POST .../{id}/read` marks one read.

Authentication: `Authorization: Bearer` DUNNING_APP_TOKEN, else the support token (one secret
for small deployments); without either the routes are open in dev mode only (the support API
refuses to start otherwise). A notice read is the customer's engagement with the case
(`notifications.read_at`), for the recovery report.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from models.channel_store import ChannelStore
from models.ledger import Notification, aware
from models.settings import Settings
from models.store import Ledger

_bearer = HTTPBearer(auto_error=False, description="DUNNING_APP_TOKEN (else DUNNING_SUPPORT_TOKEN)")


class InAppNotice(BaseModel):
    id: int
    invoice_id: str
    template: str
    level: str | None
    step: int | None
    title: str | None
    text: str | None
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, row: Notification) -> InAppNotice:
        return cls(
            id=row.id,
            invoice_id=row.invoice_id,
            template=row.template,
            level=row.level,
            step=row.step,
            title=row.subject,
            text=row.body_text,
            created_at=aware(row.created_at) or row.created_at,
            read_at=aware(row.read_at),
        )


class NotFound(Exception):
    pass


def notifications_router() -> APIRouter:
    async def require_token(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> None:
        settings: Settings = request.app.state.settings
        token = settings.dunning_app_token or settings.dunning_support_token
        if not token and settings.dev_mode:
            return
        given = credentials.credentials if credentials else ""
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized()

    router = APIRouter(
        prefix="/api/customers", tags=["in-app"], dependencies=[Depends(require_token)]
    )

    def store(request: Request) -> ChannelStore:
        ledger: Ledger = request.app.state.ledger
        return ChannelStore(ledger.sessions)

    @router.get("/{customer_id}/notifications", summary="A customer's in-app notices")
    async def feed(
        request: Request, customer_id: str, limit: int = Query(50, ge=1, le=200)
    ) -> list[InAppNotice]:
        rows = await run_in_threadpool(store(request).feed, customer_id, limit)
        return [InAppNotice.of(row) for row in rows]

    @router.post(
        "/{customer_id}/notifications/{notification_id}/read",
        summary="Mark a notice read (engagement)",
        responses={404: {"description": "no such notice for this customer"}},
    )
    async def mark_read(request: Request, customer_id: str, notification_id: int) -> InAppNotice:
        row = await run_in_threadpool(store(request).mark_read, customer_id, notification_id)
        if row is None:
            raise NotFound()
        return InAppNotice.of(row)

    return router


class Unauthorized(Exception):
    pass


def install_notifications_api(app: FastAPI) -> None:
    """The routes and their error answers, in the support API's `{"error": …}` shape."""

    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": "missing or wrong app token"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "no such notification for this customer"}, status_code=404)

    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(NotFound, not_found)
    app.include_router(notifications_router())
