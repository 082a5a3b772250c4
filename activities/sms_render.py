"""Render SMS bodies (and the in-app notice text) from `templates/sms/<name>.txt.j2`.

Pure, like activities/email_render.py, whose variables (name, amount, link, deadline) the
templates share. A text must fit two segments: when it would not, the name goes first, then
the characters that force UCS-2 (70 instead of 160 per segment) are spelled in GSM-7.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from activities.email_render import FALLBACK_NAME, EmailContext, message_variables
from activities.twilio_client import is_gsm7, sms_segments

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "sms"
OPT_OUT_HINT = "Reply STOP to opt out."
MAX_SEGMENTS = 2


class SmsTooLong(ValueError):
    """Even the shortest form of the message needs more than two segments."""


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=False,  # plain text, never HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_text(template: str, context: EmailContext, name: str | None = None) -> str:
    """The message in one line, without the opt-out hint (the in-app notice uses it as is)."""
    variables = message_variables(template, context)
    if name is not None:
        variables["name"] = name
    text = _environment().get_template(f"{template}.txt.j2").render(variables)
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


def render_sms(template: str, context: EmailContext) -> str:
    """The SMS body, ending with the opt-out hint, in at most two segments."""
    named = render_text(template, context)
    unnamed = render_text(template, context, name=FALLBACK_NAME.capitalize())
    candidates = [named, to_gsm7(named), unnamed, to_gsm7(unnamed)]
    for text in candidates:
        body = f"{text} {OPT_OUT_HINT}"
        if sms_segments(body) <= MAX_SEGMENTS:
            return body
    raise SmsTooLong(f"the {template} SMS needs {sms_segments(body)} segments")
