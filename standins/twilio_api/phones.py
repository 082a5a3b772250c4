"""Phone number checks the Messages API makes before accepting a message."""

from __future__ import annotations

import re

import phonenumbers

# An alphanumeric sender ID: up to 11 characters, letters, digits and spaces, at least one
# letter (Twilio's alphanumeric sender ID rules).
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def e164(raw: str) -> str | None:
    """The E.164 form of `raw` when it is a valid number written with its country code."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_alphanumeric_sender(raw: str) -> bool:
    return bool(_ALPHANUMERIC.match(raw))
