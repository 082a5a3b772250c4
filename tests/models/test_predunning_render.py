"""The card-expiry messages in each language, from the predunning catalogs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.predunning_render import MESSAGES, CardFacts, render_predunning

RENEWAL = datetime(2027, 2, 3, 12, tzinfo=UTC)


def facts(**overrides: object) -> CardFacts:
    values: dict[str, object] = {
        "customer_name": "Ada",
        "locale": "en",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 1,
        "exp_year": 2027,
        "renews_at": RENEWAL,
        "update_url": "https://billing.example.com/card?c=1&x=<2>",
    }
    return CardFacts.model_validate({**values, **overrides})


def test_warning_in_english_names_card_expiry_renewal_and_link() -> None:
    out = render_predunning("warning", facts())
    assert out.subject == "Your card expires before your next payment"
    assert out.text.startswith("Hi Ada,\n\nVisa •••• 4242 expires at the end of 01/2027")
    assert "renews on February 3, 2027." in out.text
    assert "Update your card: https://billing.example.com/card?c=1&x=<2>" in out.text
    # HTML escapes what it interpolates; the text part does not.
    assert 'href="https://billing.example.com/card?c=1&amp;x=&lt;2&gt;"' in out.html
    assert '<html lang="en">' in out.html


def test_reminder_in_spanish_without_name_or_link() -> None:
    out = render_predunning(
        "reminder", facts(customer_name=None, locale="es-MX", update_url=None, brand=None)
    )
    assert out.locale == "es"
    assert out.subject == "Recordatorio: actualiza tu tarjeta antes del 3 de febrero de 2027"
    assert out.text.startswith("Hola:\n\nTu suscripción se renueva el 3 de febrero de 2027")
    assert "tu tarjeta habrá caducado" in out.text
    assert "Actualiza tu tarjeta:" not in out.text and "<a " not in out.html


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("locale", ["en", "es"])
def test_every_sentence_is_translated_and_nothing_is_due(message: str, locale: str) -> None:
    out = render_predunning(message, facts(locale=locale))  # type: ignore[arg-type]
    due = {"en": "Nothing is due today.", "es": "Hoy no tienes nada pendiente de pago."}
    assert due[locale] in out.text and due[locale] in out.html
    if locale == "es":
        assert not any(word in out.text for word in ("Update", "expires", "renews", "Hi "))
