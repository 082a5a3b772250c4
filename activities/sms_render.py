"""Render SMS bodies (and the in-app notice text) from `templates/sms/<name>.txt.j2`, in the
customer's language.

Pure, like activities/email_render.py, whose variables (name, amount, link, dates) the
templates share. A text must fit two segments: when it would not, the name goes first, then
the characters that force UCS-2 (70 instead of 160 per segment) are spelled in GSM-7, then the
date of the next attempt and the words before the link go.
"""

from __future__ import annotations

import gettext
import unicodedata
from pathlib import Path

from activities.message_copy import (
    FALLBACK_NAME,
    N_,
    EmailContext,
    catalog_for,
    message_variables,
)
from activities.templating import pick
from activities.twilio_client import is_gsm7, sms_segments
from models.i18n import message_environment

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "sms"
# Twilio's opt-out keywords are English (STOP, START), whatever the language of the text, so
# every translation of the hint must still name STOP.
OPT_OUT_HINT = N_("Reply STOP to opt out.")
MAX_SEGMENTS = 2


class SmsTooLong(ValueError):
    """Even the shortest form of the message needs more than two segments."""


def opt_out_hint(catalog: gettext.NullTranslations) -> str:
    return catalog.gettext(OPT_OUT_HINT)


def render_text(
    template: str,
    context: EmailContext,
    name: str | None = None,
    catalog: gettext.NullTranslations | None = None,
    brief: bool = False,
) -> str:
    """The message in one line, without the opt-out hint (the in-app notice uses it as is).
    `brief` leaves out the date of the next attempt and the words before the link."""
    catalog = catalog or catalog_for(context)
    variables = message_variables(template, context, catalog)
    if name is not None:
        variables["name"] = name
    variables["brief"] = brief
    if brief:
        variables["next_date"] = None
    env = message_environment(TEMPLATE_DIR, catalog)
    text = pick(env, template, "txt.j2", context.variant).render(variables)
    return " ".join(text.split())


def to_gsm7(text: str) -> str:
    """Accents stripped (é stays: GSM-7 has it), anything else outside GSM-7 dropped."""
    out = []
    for ch in text:
        if is_gsm7(ch):
            out.append(ch)
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out.append(plain if is_gsm7(plain) else "")
    return "".join(out)


def render_sms(
    template: str, context: EmailContext, catalog: gettext.NullTranslations | None = None
) -> str:
    """The SMS body, ending with the opt-out hint, in at most two segments."""
    catalog = catalog or catalog_for(context)
    anonymous = catalog.gettext(FALLBACK_NAME).capitalize()
    named = render_text(template, context, catalog=catalog)
    unnamed = render_text(template, context, name=anonymous, catalog=catalog)
    brief = render_text(template, context, name=anonymous, catalog=catalog, brief=True)
    candidates = [named, to_gsm7(named), unnamed, to_gsm7(unnamed), brief, to_gsm7(brief)]
    hint = opt_out_hint(catalog)
    for text in candidates:
        body = f"{text} {hint}"
        if sms_segments(body) <= MAX_SEGMENTS:
            return body
    raise SmsTooLong(f"the {template} SMS needs {sms_segments(body)} segments")
