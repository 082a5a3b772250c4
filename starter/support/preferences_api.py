"""`GET|PUT /api/customers/{customer_id}/preferences`: how support reaches a customer.

Behind the support token, like `/api/cases`. A PUT is idempotent: sent again (say after a
503), it stores the same preferences and tells the running cases again, which changes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError

from models.preferences import PreferenceError
from models.settings import Settings
from models.store import Ledger
from starter.deps import TemporalConnector, TemporalUnavailable
from starter.support.api import support_auth
from starter.support.api_errors import ERRORS, SupportError, SupportRoute
from starter.support.preferences import (
    CasesNotTold,
    PreferencesChange,
    PreferencesView,
    change_preferences,
    current_preferences,
)


def preferences_router(settings: Settings | None = None) -> APIRouter:
    router = APIRouter(
        prefix="/api/customers",
        tags=["support"],
        route_class=SupportRoute,
        dependencies=[Depends(support_auth(settings))],
        responses=ERRORS,
    )

    @router.get(
        "/{customer_id}/preferences",
        summary="A customer's channels, phone, time zone, locale and opt-outs",
    )
    async def show(request: Request, customer_id: str) -> PreferencesView:
        ledger: Ledger = request.app.state.ledger
        return await run_in_threadpool(current_preferences, ledger, customer_id)

    @router.put(
        "/{customer_id}/preferences",
        summary="Change them; opt-outs and opt-ins reach running cases at once",
        responses={503: {"description": "stored, but running cases could not be told: retry"}},
    )
    async def change(
        request: Request, customer_id: str, body: PreferencesChange
    ) -> PreferencesView:
        ledger: Ledger = request.app.state.ledger
        connector: TemporalConnector = request.app.state.temporal
        client: Client | None
        try:
            client = await connector.get()
        except TemporalUnavailable:
            client = None
        try:
            view = await change_preferences(ledger, client, customer_id, body)
        except PreferenceError as err:
            raise SupportError(400, str(err)) from None
        except RPCError as err:
            raise SupportError(503, f"stored; running cases not told ({err.status.name})") from err
        except CasesNotTold as err:
            raise SupportError(
                503,
                f"stored, but Temporal is unreachable and {len(err.invoices)} running case(s)"
                " were not told of the opt-out or opt-in: send the same request again",
            ) from None
        return view

    return router
