"""The languages customers read, their catalogs, and amounts and dates in their locale.

Pure (no network, database or Temporal), so activities and the API share it. Catalogs are
`locales/<lang>/LC_MESSAGES/<domain>.po` at the repository root, compiled in memory when first
used: there is no build step and no `.mo` file to keep in step with its `.po`.
"""

from __future__ import annotations

import gettext
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import UnknownCurrencyError, format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.money import currency_exponent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
SUPPORTED: tuple[str, ...] = ("en", "es")
DEFAULT_LOCALE = "en"


def _parse(tag: str | None) -> Locale | None:
    # Stripe's preferred_locales and browsers use BCP 47 ("es-MX"); POSIX uses "es_ES.UTF-8".
    if not tag:
        return None
    cleaned = tag.strip().split(".")[0].split("@")[0].replace("-", "_")
    try:
        return Locale.parse(cleaned) if cleaned else None
    except (UnknownLocaleError, ValueError, TypeError):
        # "ES" alone, or a region Babel lacks data for ("es_ZZ"): the language still counts.
        try:
            return Locale.parse(cleaned.split("_")[0].lower())
        except (UnknownLocaleError, ValueError, TypeError):
            return None


def supported_locale(tag: str | None) -> str:
    """The language we write to this customer in: "es-MX", "es_ES", "ES" → "es"; else "en"."""
    parsed = _parse(tag)
    if parsed is not None and parsed.language in SUPPORTED:
        return parsed.language
    return DEFAULT_LOCALE


def translations(locale: str | None, domain: str = "messages") -> gettext.NullTranslations:
    """The catalog of `domain` in the customer's language ("es-MX" reads `es`), compiled once
    per process; without a `.po` file, a catalog that leaves the source (English) text."""
    return _compiled(supported_locale(locale), domain)


@lru_cache(maxsize=32)
def _compiled(language: str, domain: str) -> gettext.NullTranslations:
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=domain)
    compiled = BytesIO()
    # Fuzzy entries are guesses by `pybabel update`, not translations: gettext falls back to
    # the English source for them, as it does for empty ones.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def formatting_locale(tag: str | None) -> Locale:
    """The customer's regional conventions (es_MX, en_GB) within the language we write in."""
    parsed = _parse(tag)
    language = supported_locale(tag)
    if parsed is not None and parsed.language == language:
        return parsed
    return Locale.parse(language)


def format_money(amount_minor: int, currency: str, locale: str | None = DEFAULT_LOCALE) -> str:
    """Stripe's minor units as the customer reads money: "12,34 €" in es, "€12.34" in en.

    Numbers follow the customer's own locale even when we write in English ("de": "12,00 €"),
    so an amount always reads as their bank shows it."""
    code = currency.upper()
    value = Decimal(amount_minor).scaleb(-currency_exponent(code))
    loc = _parse(locale) or Locale.parse(DEFAULT_LOCALE)
    try:
        return format_currency(value, code, locale=loc)
    except UnknownCurrencyError:
        # Keep the digits Stripe implies rather than failing a message on a rare code.
        return f"{code} {value}"


def zone(timezone: str | None) -> tzinfo:
    """The customer's IANA zone; unknown or missing: UTC."""
    if not timezone:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_day(moment: datetime, locale: str | None, timezone: str | None) -> str:
    """The calendar day `moment` falls on where the customer lives, as a long date in their
    language: 2026-03-29T23:30Z is "30 de marzo de 2026" in Europe/Madrid."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    local = aware.astimezone(zone(timezone))
    return format_date(local.date(), format="long", locale=formatting_locale(locale))


@lru_cache(maxsize=32)
def message_environment(folder: Path, catalog: gettext.NullTranslations) -> Environment:
    """Jinja for customer messages (emails, texts, pre-dunning warnings) in one catalog's
    language; cached per folder and catalog (`translations` caches one catalog per language)."""
    env = Environment(
        loader=FileSystemLoader(folder),
        extensions=["jinja2.ext.i18n"],
        # Only HTML parts are escaped; subjects, texts and SMS are plain text.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Loaded once per process: no stat of every template (and its layout) on every message.
        auto_reload=False,
    )
    # A sentence may wrap over lines in its template; its msgid is the sentence on one line
    # (babel.cfg extracts with `trimmed = true` to match).
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    return env
