"""Languages, catalogs, amounts and dates in the customer's locale (models/i18n.py)."""

from __future__ import annotations

import gettext
from datetime import UTC, datetime

import pytest

from models.i18n import (
    LOCALES_DIR,
    SUPPORTED,
    format_day,
    format_money,
    supported_locale,
    translations,
)


def nbsp(value: str) -> str:
    return value.replace("\xa0", " ").replace("\u202f", " ")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("es_ES", "es"),
        ("ES", "es"),
        ("es_ES.UTF-8", "es"),
        ("en-GB", "en"),
        ("fr-CA", "en"),
        ("not-a-locale", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_supported_locale(tag: str | None, expected: str) -> None:
    assert supported_locale(tag) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (1234, "eur", "es", "12,34 €"),
        (1234, "EUR", "es-ES", "12,34 €"),
        (1234, "eur", "en", "€12.34"),
        (123456789, "eur", "es", "1.234.567,89 €"),
        (1200, "jpy", "es", "1.200 JPY"),
        (1200, "EUR", "de", "12,00 €"),
        (1200, "EUR", None, "€12.00"),
        (1200, "XYZ", "es", "12,00 XYZ"),
    ],
)
def test_format_money(amount: int, currency: str, locale: str | None, expected: str) -> None:
    assert nbsp(format_money(amount, currency, locale)) == expected


@pytest.mark.parametrize(
    ("moment", "locale", "timezone", "expected"),
    [
        # Late evening UTC is already the next day in Madrid (UTC+2 after 29 March 2026).
        (datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "es", "Europe/Madrid", "30 de marzo de 2026"),
        (datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "es", None, "29 de marzo de 2026"),
        # Across the DST change: 21:30 UTC is 22:30 CET on the 28th, 23:30 CEST on the 29th.
        (datetime(2026, 3, 28, 22, 30, tzinfo=UTC), "es", "Europe/Madrid", "28 de marzo de 2026"),
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "es", "Europe/Madrid", "30 de marzo de 2026"),
        # Behind UTC: the early hours UTC are still the previous day in Lima.
        (datetime(2026, 11, 1, 3, tzinfo=UTC), "es", "America/Lima", "31 de octubre de 2026"),
        (datetime(2026, 3, 5, 12, tzinfo=UTC), "en", "America/New_York", "March 5, 2026"),
        (datetime(2026, 3, 5, 12, tzinfo=UTC), "fr", "Not/AZone", "March 5, 2026"),
        (datetime(2026, 3, 5, 12), "es", "Asia/Tokyo", "5 de marzo de 2026"),
    ],
)  # fmt: skip
def test_format_day_in_the_customers_zone(
    moment: datetime, locale: str, timezone: str | None, expected: str
) -> None:
    assert format_day(moment, locale, timezone) == expected


def test_a_missing_catalog_leaves_the_source_text() -> None:
    catalog = translations("es", "no_such_domain")
    assert type(catalog) is gettext.NullTranslations
    assert catalog.gettext("Hi") == "Hi"


@pytest.mark.parametrize("locale", SUPPORTED)
def test_messages_catalog_compiles_in_memory_and_is_cached(locale: str) -> None:
    assert (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").is_file()
    catalog = translations(locale)
    assert isinstance(catalog, gettext.GNUTranslations)
    assert translations(f"{locale}-ZZ") is not None
    assert translations(locale) is catalog


def test_regional_tags_share_the_language_catalog() -> None:
    hint = "Reply STOP to opt out."
    assert translations("es-MX") is translations("es_ES") is translations("es")
    # Twilio's opt-out keywords are English, so the Spanish hint still names STOP.
    assert "STOP" in translations("es").gettext(hint) != hint
