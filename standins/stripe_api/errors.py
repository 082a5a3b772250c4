"""Stripe's error objects (https://docs.stripe.com/api/errors) as an exception type."""

from __future__ import annotations

from typing import Any


def doc_url(code: str) -> str:
    return "https://docs.stripe.com/error-codes/" + code.replace("_", "-")


class StripeError(Exception):
    """An API error rendered as `{"error": {...}}` with the given HTTP status.

    `saved` says whether an idempotent request's result is stored. Stripe saves a result only
    once endpoint execution has begun; requests that fail parameter validation (and requests
    that conflict with a concurrent one) are not saved and can be retried with the same key.
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        saved: bool = False,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.saved = saved
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = doc_url(self.code)
        if self.param:
            err["param"] = self.param
        err.update(self.extra)
        return {"error": err}


def invalid(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


def missing_param(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def bad_param(param: str, message: str) -> StripeError:
    return invalid(message, param=param, code="parameter_invalid_string_empty")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    # Stripe's wording for unknown ids, e.g. "No such customer: 'cus_123'".
    return invalid(
        f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404
    )


def auth_error(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def api_error(message: str) -> StripeError:
    return StripeError(500, "api_error", message, saved=True)
