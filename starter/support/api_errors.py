"""How the support API answers failures: `{"error": message}` with the right status.

Kept apart from the routes (starter/support/api.py) so that file reads as the API itself.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from starter.support.service import ActionRejected, CaseNotFound


class ErrorBody(BaseModel):
    error: str


class SupportError(Exception):
    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code, self.message, self.headers = status_code, message, headers


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for error in err.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts)


class SupportRoute(APIRoute):
    """Answers this router's failures as `{"error": ...}` without app-wide handlers.

    Dependencies and body validation run inside the route handler, so wrapping it catches a
    bad token, a malformed body and the service's outcomes alike.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SupportError as err:
                body, status, headers = err.message, err.status_code, err.headers
            except CaseNotFound as err:
                body, status, headers = str(err), 404, None
            except ActionRejected as err:
                body, status, headers = str(err), 422, None
            except RequestValidationError as err:
                body, status, headers = _validation_message(err), 422, None
            return JSONResponse({"error": body}, status_code=status, headers=headers)

        return route


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    503: {"model": ErrorBody, "description": "Temporal is unreachable; retry"},
}
CASE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad Idempotency-Key"},
    404: {"model": ErrorBody, "description": "No dunning case exists for this invoice"},
    422: {"model": ErrorBody, "description": "Rejected (the validator's message) or malformed"},
}
