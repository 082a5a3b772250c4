"""The payment page's catalogs: every text the templates show is translated, and compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from models.i18n import LOCALES_DIR, translations
from starter.pay.render import DOMAIN, TEMPLATE_DIR

PLACEHOLDER = re.compile(r"%\(\w+\)s")


def template_messages() -> set[str]:
    found = extract_from_dir(
        str(TEMPLATE_DIR),
        method_map=[("**.j2", "jinja2")],
        options_map={"**.j2": {"extensions": "jinja2.ext.i18n"}},
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def catalog(language: str) -> dict[str, str]:
    path = Path(LOCALES_DIR) / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        parsed = read_po(po, locale=language, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in parsed if m.id and not m.fuzzy}


def test_the_templates_have_texts_to_translate() -> None:
    assert len(template_messages()) > 50


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_template_text_is_in_the_catalog(language: str) -> None:
    missing = template_messages() - set(catalog(language))
    assert not missing, f"add to locales/{language}/LC_MESSAGES/pay.po: {sorted(missing)}"


def test_every_spanish_text_is_translated_with_the_same_placeholders() -> None:
    for source, spanish in catalog("es").items():
        assert spanish, f"untranslated: {source!r}"
        assert sorted(PLACEHOLDER.findall(spanish)) == sorted(PLACEHOLDER.findall(source)), source


def test_the_catalogs_load_through_models_i18n() -> None:
    assert translations("es-MX", DOMAIN).gettext("Pay now") == "Pagar ahora"
    assert translations("en", DOMAIN).gettext("Pay now") == "Pay now"
