"""Minor-unit amounts as Stripe sends them."""

from __future__ import annotations

# Stripe's documented zero-decimal currencies have no minor unit, and its three-decimal ones
# count thousandths (docs.stripe.com/currencies); every other currency counts hundredths.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())


def currency_exponent(currency: str) -> int:
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def plain_amount(amount_minor: int, currency: str) -> str:
    """'EUR 12.00': locale-free, for summaries and logs (the emails use babel)."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return f"{currency.upper()} {amount_minor}"
    return f"{currency.upper()} {amount_minor / 10**exponent:.{exponent}f}"
