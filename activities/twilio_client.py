"""The Twilio client the sms channel uses, and the pure helpers that shape an SMS.

`make_twilio_client` returns the real `twilio.rest.Client`. To reach a stand-in it plugs in its
own HTTP client, the extension point the SDK documents (advanced-examples/custom-http-client):
every request keeps its path and query and goes to `api_base` instead of *.twilio.com. Nothing
global is patched, and the URLs the SDK builds for the next page of a list are redirected too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

# GSM 03.38: the default alphabet (one septet per character) and its extension table (an escape
# and the character: two septets). A body outside both is sent as UCS-2.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends every request to `api_base`, keeping the path and query the SDK built."""

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(api_base.rstrip("/"))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        target = urlunsplit(
            (self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, "")
        )
        return super().request(method, target, *args, **kwargs)


def make_twilio_client(
    account_sid: str, auth_token: str, api_base: str | None, timeout: float
) -> Client:
    """A Twilio REST client with a per-request `timeout` (seconds), aimed at `api_base` if given.

    The SDK does not retry on its own (its requests session keeps requests' default of no
    retries), so one Temporal retry of ours is one Twilio request. Region and edge are left
    unset: a stand-in URL must not be rewritten into api.<edge>.<region>.twilio.com.
    """
    http_client = (
        _BaseUrlHttpClient(api_base, timeout) if api_base else TwilioHttpClient(timeout=timeout)
    )
    return Client(account_sid, auth_token, http_client=http_client)


def to_e164(raw: str, default_region: str | None) -> str:
    """`raw` in E.164 (`+34612345678`), read as a national number of `default_region`
    (ISO 3166 alpha-2, e.g. "ES") when it has no country code. Raises ValueError when it is
    not a valid phone number: Twilio refuses anything else with error 21211."""
    region = default_region.upper() if default_region else None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {raw!r} ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        where = f" in region {region}" if region else ""
        raise ValueError(f"not a valid phone number{where}: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_gsm7(body: str) -> bool:
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in body)


def sms_segments(body: str) -> int:
    """How many SMS segments `body` is billed as.

    GSM-7 bodies fit 160 septets in one segment and 153 per segment once split (the rest is
    the concatenation header); an extension character takes two septets. Any other character
    makes the whole body UCS-2: 70 UTF-16 units in one segment, 67 per segment once split,
    an emoji (outside the BMP) taking two. A character is never split across segments.
    """
    if is_gsm7(body):
        units = [2 if ch in _GSM7_EXTENSION else 1 for ch in body]
        single, multi = 160, 153
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, multi = 70, 67
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments
