"""Render dunning emails (subject, plain text, HTML) from Jinja templates, in the customer's
language.

Pure: no network, database or Temporal imports, so it can run inside any activity or test.
Templates live in `templates/email/` at the repository root as `<name>.subject.j2`,
`<name>.txt.j2` and `<name>.html.j2` (and `<name>.<variant>.<part>` for an experiment arm);
what they say about the case comes from activities/message_copy.py.
"""

from __future__ import annotations

import gettext
from pathlib import Path

from pydantic import BaseModel

from activities.message_copy import (
    FALLBACK_NAME,
    TEMPLATES,
    EmailContext,
    catalog_for,
    message_context,
    message_variables,
)
from activities.templating import pick
from models.i18n import DEFAULT_LOCALE, format_money, message_environment

__all__ = [
    "FALLBACK_LOCALE",
    "FALLBACK_NAME",
    "TEMPLATES",
    "TEMPLATE_DIR",
    "EmailContext",
    "RenderedEmail",
    "format_amount",
    "message_context",
    "message_variables",
    "render_email",
]

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"
FALLBACK_LOCALE = DEFAULT_LOCALE


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str


def format_amount(amount_minor: int, currency: str, locale: str = "en") -> str:
    return format_money(amount_minor, currency, locale)


def render_email(
    template: str, context: EmailContext, catalog: gettext.NullTranslations | None = None
) -> RenderedEmail:
    """`catalog`: the customer's language (from `context.locale`) unless a test passes one."""
    catalog = catalog or catalog_for(context)
    variables = message_variables(template, context, catalog)
    env = message_environment(TEMPLATE_DIR, catalog)
    subject = pick(env, template, "subject.j2", context.variant).render(variables)
    text = pick(env, template, "txt.j2", context.variant).render(variables)
    html = pick(env, template, "html.j2", context.variant).render(variables)
    return RenderedEmail(
        # A subject is a single header line; collapse whitespace so a name can't add lines.
        subject=" ".join(subject.split()),
        text=text.strip() + "\n",
        html=html.strip() + "\n",
    )
