"""A validator's refusal in the customer's words and language (starter/pay/refusals.py)."""

from __future__ import annotations

import pytest

from starter.pay.refusals import PATTERNS, refusal_text
from starter.pay.render import Locale


def test_a_refusal_with_dates_reads_in_spanish_with_spanish_dates() -> None:
    message = "pick a date after 2026-12-02 and no later than 2026-12-16"
    spanish = refusal_text(message, Locale("es-MX"))
    assert spanish == (
        "Elige una fecha posterior al 2 de diciembre de 2026 y no más tarde del"
        " 16 de diciembre de 2026."
    )
    english = refusal_text(message, Locale("en"))
    assert (
        english == "Please pick a date after December 2, 2026 and no later than December 16, 2026."
    )


@pytest.mark.parametrize(
    ("message", "spanish"),
    [
        ("grace is limited to 7 days per grant", "Puedes pedir como máximo 7 días más."),
        (
            "grace is limited to 14 days in total; 14 already granted, 0 left",
            "No se puede dar más tiempo para este pago.",
        ),
        (
            "message is limited to 2000 characters",
            "Tu mensaje puede tener como máximo 2000 caracteres.",
        ),
        ("message is required", "Escribe un mensaje."),
        # The case's own words stay internal: the customer reads what it means for them.
        (
            "the case is closed: recovered (charge attempt 2)",
            "Este pago ya está resuelto: aquí ya no se puede cambiar nada.",
        ),
        (
            "the final action (cancel_subscription) is already running",
            "Ahora mismo no se puede hacer. Inténtalo de nuevo en un minuto.",
        ),
        # A fixed refusal of workflows/customer.py is a catalog entry as it is.
        (
            "this card was already tried; please use another card",
            "ya se intentó con esta tarjeta; usa otra tarjeta",
        ),
    ],
)
def test_each_refusal_reads_in_spanish(message: str, spanish: str) -> None:
    assert refusal_text(message, Locale("es")) == spanish


def test_an_unknown_refusal_is_shown_as_it_is() -> None:
    assert refusal_text("something new", Locale("es")) == "something new"


def test_every_pattern_has_a_spanish_sentence() -> None:
    es = Locale("es")
    for _, text in PATTERNS:
        assert es.gettext(text) != text, text
