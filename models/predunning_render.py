"""The card-expiry warning and reminder emails (subject, text, HTML), in the customer's language.

Pure (no network, database or Temporal). Templates are `templates/predunning/<message>.<part>`;
every sentence is a `{% trans %}` block of Jinja's i18n extension (trimmed), translated through
the `predunning` catalogs (locales/<lang>/LC_MESSAGES/predunning.po, models.i18n).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from models.i18n import format_day, message_environment, supported_locale, translations

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "predunning"
DOMAIN = "predunning"
MESSAGES: tuple[str, ...] = ("warning", "reminder")


class CardFacts(BaseModel):
    """What the message says: the card by brand and last digits only, never the number."""

    customer_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    brand: str | None = None
    last4: str | None = None
    exp_month: int
    exp_year: int
    renews_at: datetime
    update_url: str | None = None


class RenderedMessage(BaseModel):
    subject: str
    text: str
    html: str
    locale: str


def render_predunning(message: Literal["warning", "reminder"], facts: CardFacts) -> RenderedMessage:
    locale = supported_locale(facts.locale)
    catalog = translations(locale, DOMAIN)
    env = message_environment(TEMPLATE_DIR, catalog)
    brand = (facts.brand or "card").replace("_", " ").title() if facts.brand else None
    context = {
        "name": facts.customer_name,
        "card": f"{brand} •••• {facts.last4}"
        if brand and facts.last4
        else catalog.gettext("your card"),
        "expiry": f"{facts.exp_month:02d}/{facts.exp_year}",
        "renewal": format_day(facts.renews_at, facts.locale, facts.timezone),
        "url": facts.update_url,
        "lang": locale,
    }
    subject = env.get_template(f"{message}.subject.j2").render(context).strip()
    text = env.get_template(f"{message}.txt.j2").render(context).strip() + "\n"
    html = env.get_template(f"{message}.html.j2").render(context)
    return RenderedMessage(subject=subject, text=text, html=html, locale=locale)
