"""Which template of a customer message to use: the arm's variant, else the base.

Every sentence of a template is a `{% trans %}` block (Jinja's i18n extension, "new style":
variables are passed by name and, in HTML, escaped while the translated text is trusted), so
`pybabel extract` finds it and the customer's catalog (models/i18n.py, which also builds the
Jinja environments: `message_environment`) supplies their language.
"""

from __future__ import annotations

from jinja2 import (
    Environment,
    Template,
    TemplateNotFound,
)

from activities.message_copy import VARIANT


def pick(env: Environment, name: str, part: str, variant: str | None) -> Template:
    """`<name>.<variant>.<part>` when the experiment arm has its own file, else `<name>.<part>`;
    each part on its own, so a variant may change only its subject."""
    if variant and VARIANT.match(variant):
        try:
            return env.get_template(f"{name}.{variant}.{part}")
        except TemplateNotFound:
            pass
    return env.get_template(f"{name}.{part}")
