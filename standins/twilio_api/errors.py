"""Twilio's REST error body: `{"code", "message", "more_info", "status"}` with a Twilio code.

Codes and their HTTP statuses follow Twilio's error dictionary (twilio.com/docs/api/errors).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }

    def response(self) -> JSONResponse:
        headers = None
        if self.status == 401:
            # Basic auth challenge, as api.twilio.com sends with its 401s.
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def authenticate() -> TwilioError:
    return TwilioError(401, 20003, "Authenticate")


def not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def too_many_requests() -> TwilioError:
    return TwilioError(429, 20429, "Too Many Requests")


def internal_error() -> TwilioError:
    return TwilioError(500, 20500, "Internal Server Error")


def to_required() -> TwilioError:
    return TwilioError(400, 21604, "A 'To' phone number is required.")


def from_required() -> TwilioError:
    return TwilioError(400, 21603, "A 'From' phone number is required.")


def body_required() -> TwilioError:
    return TwilioError(400, 21602, "Message body is required.")


def body_too_long() -> TwilioError:
    return TwilioError(
        400, 21617, "The concatenated message body exceeds the 1600 character limit."
    )


def invalid_to(to: str) -> TwilioError:
    return TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def invalid_from(from_: str) -> TwilioError:
    return TwilioError(
        400,
        21606,
        f"The 'From' phone number provided ({from_}) is not a valid message-capable Twilio "
        "phone number for this destination/account.",
    )


def not_twilio_number(from_: str) -> TwilioError:
    return TwilioError(
        400, 21659, f"'From' {from_} is not a Twilio phone number or Short Code country mismatch"
    )


def invalid_messaging_service(sid: str) -> TwilioError:
    return TwilioError(400, 21701, f"The Messaging Service Sid {sid} is invalid.")


def unsubscribed() -> TwilioError:
    return TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
