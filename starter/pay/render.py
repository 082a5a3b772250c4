"""How the payment page renders: one Jinja environment per language, security headers.

Catalogs are `locales/<lang>/LC_MESSAGES/pay.po`, read through `models.i18n.translations`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from models.i18n import format_day, format_money, supported_locale, translations
from starter.pay.refusals import refusal_text

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "pay"
DOMAIN = "pay"
STRIPE_JS = "https://js.stripe.com"


def headers(stripe_js: bool = False) -> dict[str, str]:
    # Our own stylesheet and script only. The production card page adds Stripe.js, which
    # Stripe requires to load from its own domain (PCI scope), with the hosts its
    # Content-Security-Policy guide lists: js.stripe.com and its subdomains (script, frames),
    # hooks.stripe.com (3-D Secure frames) and api.stripe.com (calls).
    stripe = f" {STRIPE_JS} https://*.js.stripe.com" if stripe_js else ""
    frames = f"frame-src{stripe} https://hooks.stripe.com; " if stripe_js else ""
    connect = "connect-src https://api.stripe.com; " if stripe_js else ""
    return {
        "Content-Security-Policy": f"default-src 'none'; script-src 'self'{stripe};"
        f" style-src 'self'; img-src 'self' data:; {frames}{connect}form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        # The token is in the path: never send it to another site as a Referer.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex",
    }


@lru_cache(maxsize=8)
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(language, DOMAIN), newstyle=True)  # type: ignore[attr-defined]
    env.globals["refusal"] = refusal_text
    return env


class Locale:
    """The customer's locale tag (es-MX) for numbers and dates, and the page's language."""

    def __init__(self, tag: str | None, timezone: str | None = None) -> None:
        self.tag = tag or "en"
        self.language = supported_locale(tag)
        self.timezone = timezone

    def money(self, amount: int, currency: str) -> str:
        return format_money(amount, currency, self.tag)

    def day(self, moment: datetime | None) -> str:
        return format_day(moment, self.tag, self.timezone) if moment else ""

    def date(self, iso: str) -> str:
        # A calendar day (the picker's), not a moment: noon UTC falls on it in every zone
        # the customer may be in, so their zone cannot move it.
        return format_day(datetime.combine(date.fromisoformat(iso), time(12), UTC), self.tag, None)

    def gettext(self, text: str) -> str:
        return translations(self.language, DOMAIN).gettext(text)


def render(
    locale: Locale, template: str, status: int = 200, stripe_js: bool = False, **context: Any
) -> HTMLResponse:
    html = (
        environment(locale.language)
        .get_template(template)
        .render(loc=locale, lang=locale.language, **context)
    )
    return HTMLResponse(html, status, headers=headers(stripe_js))
