"""The pure SMS helpers (E.164, segments) and the Twilio client factory."""

from __future__ import annotations

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.twilio_client import is_gsm7, make_twilio_client, sms_segments, to_e164
from standins.twilio_api.segments import count_segments


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+34 612 34 56 78", None, "+34612345678"),
        ("612 345 678", "ES", "+34612345678"),
        ("612345678", "es", "+34612345678"),
        ("(202) 555-0123", "US", "+12025550123"),
        ("+1 202 555 0123", "ES", "+12025550123"),  # a country code wins over the region
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("612 345 678", None),  # national number without a region
        ("not a number", "ES"),
        ("+34 123", None),  # too short
        ("+1 555 555 0100", None),  # a fictional 555-01xx number is not a valid one
        ("", "US"),
    ],
)
def test_to_e164_refuses_what_twilio_would_refuse(raw: str, region: str | None) -> None:
    with pytest.raises(ValueError, match=r"phone number"):
        to_e164(raw, region)


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets: 160
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 8, 2),  # the escape pair is not split across segments
        ("ñ" * 70, 1),  # ñ is in the GSM-7 alphabet
        ("ç" * 70, 1),  # lower-case ç is not: UCS-2, 70 fit in one
        ("ç" * 71, 2),
        ("ç" * 134, 2),
        ("ç" * 135, 3),
        ("🙂" * 35, 1),  # an emoji is two UTF-16 units
        ("🙂" * 36, 2),
    ],
)
def test_sms_segments(body: str, segments: int) -> None:
    assert sms_segments(body) == segments


def test_gsm7_detection() -> None:
    assert is_gsm7("Hola Ana, tu pago de 12,00 € ha fallado. Entra en https://x.io/p?a=1 {}")
    # GSM-7 has é, è, ñ, ü… but not á, í, ó, ú: most Spanish texts are sent as UCS-2.
    assert not is_gsm7("falló")
    assert not is_gsm7("Paiement refusé — merci")  # the em dash is not GSM-7
    assert not is_gsm7("ça")


@pytest.mark.parametrize(
    "body",
    [
        "Your payment of $12.00 failed. Pay: https://pay.example.com/i/1 Reply STOP to opt out.",
        "Tu pago de 12,00 € ha fallado. Págalo aquí: https://pay.example.com/i/1 Responde STOP. "
        * 2,
        "Votre paiement a échoué — réglez-le ici : https://pay.example.com/i/in_123 " * 3,
        "[{~}]^|\\" * 25,
        "🙏" * 50 + "x",
    ],
)
def test_client_and_stand_in_count_alike(body: str) -> None:
    # The two counters are written independently; Twilio bills what the stand-in reports.
    assert sms_segments(body) == count_segments(body)


def test_client_without_api_base_uses_the_sdk_http_client() -> None:
    client = make_twilio_client("AC" + "1" * 32, "t" * 32, None, 7.5)
    assert isinstance(client, Client)
    assert type(client.http_client) is TwilioHttpClient
    assert client.http_client.timeout == 7.5
    assert client.account_sid == "AC" + "1" * 32
    assert client.api.base_url == "https://api.twilio.com"  # nothing global was changed


def test_client_with_api_base_keeps_path_and_query() -> None:
    client = make_twilio_client("AC" + "1" * 32, "t" * 32, "http://127.0.0.1:9/", 3.0)
    seen: list[str] = []
    # Stop the request at the session; only the URL the client would hit is of interest.
    client.http_client.session.send = lambda prepared, **kwargs: seen.append(prepared.url)
    with pytest.raises(Exception):  # noqa: B017 - the stubbed send returns no response
        client.messages.list(to="+34612345678", limit=1)
    assert seen == [
        "http://127.0.0.1:9/2010-04-01/Accounts/AC11111111111111111111111111111111/"
        "Messages.json?To=%2B34612345678&PageSize=1"
    ]
    assert client.http_client.timeout == 3.0
