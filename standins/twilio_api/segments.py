"""How many SMS segments Twilio bills for a body (GSM-7 or UCS-2), counted as a carrier would.

Kept apart from the client's own counter (activities.twilio_client.sms_segments) on purpose:
the stand-in plays Twilio, and a shared helper would hide a bug in ours.
"""

from __future__ import annotations

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + char, so two
# septets each). A body made only of these is sent as GSM-7; anything else forces UCS-2.
_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENDED = set("\f^{}\\[~]|€")


def _pack(units: list[int], single: int, multi: int) -> int:
    """Segments for a body of `units` (septets or UTF-16 code units per character).

    A character is never split across two segments (an escape pair or a surrogate pair stays
    whole), so a long body is packed greedily into segments of `multi` units, the rest of the
    140 bytes being the concatenation header.
    """
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def is_gsm7(body: str) -> bool:
    return all(ch in _BASIC or ch in _EXTENDED for ch in body)


def count_segments(body: str) -> int:
    if not body:
        return 1
    if is_gsm7(body):
        return _pack([2 if ch in _EXTENDED else 1 for ch in body], 160, 153)
    return _pack([2 if ord(ch) > 0xFFFF else 1 for ch in body], 70, 67)
