"""Jinja environments for the customer messages, one per template folder and catalog.

Every sentence of a template is a `{% trans %}` block (Jinja's i18n extension, "new style":
variables are passed by name and, in HTML, escaped while the translated text is trusted), so
`pybabel extract` finds it and the customer's catalog (models/i18n.py) supplies their language.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)

from activities.message_copy import VARIANT


@lru_cache(maxsize=16)
def environment(folder: Path, catalog: gettext.NullTranslations) -> Environment:
    """Cached per catalog, and models.i18n.translations caches one catalog per language."""
    env = Environment(
        loader=FileSystemLoader(folder),
        extensions=["jinja2.ext.i18n"],
        # Only HTML parts are escaped; subjects, texts and SMS are plain text.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # A sentence may wrap over lines in its template; its msgid is the sentence on one line
    # (babel.cfg extracts with `trimmed = true` to match).
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    return env


def pick(env: Environment, name: str, part: str, variant: str | None) -> Template:
    """`<name>.<variant>.<part>` when the experiment arm has its own file, else `<name>.<part>`;
    each part on its own, so a variant may change only its subject."""
    if variant and VARIANT.match(variant):
        try:
            return env.get_template(f"{name}.{variant}.{part}")
        except TemplateNotFound:
            pass
    return env.get_template(f"{name}.{part}")
