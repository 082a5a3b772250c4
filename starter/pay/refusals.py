"""The payment page's words for a validator's refusal, in the customer's language.

The workflow's validators answer in English, in the words support staff read in the CLI and the
Temporal UI. Fixed sentences from workflows/customer.py are msgids of the `pay` catalog as they
are (babel-pay.cfg extracts them). The ones below carry values ("pick a date after 2026-12-02
and no later than 2026-12-16"), or come from the case's shared checks with internal words ("the
case is closed: recovered (charge attempt 2)"), so no catalog entry can match them: each pattern
gives its own sentence, with dates in the customer's format.
"""

from __future__ import annotations

import re
from typing import Protocol


def N_(text: str) -> str:  # gettext's marker: extracted here, translated when shown
    return text


class Words(Protocol):
    def gettext(self, text: str) -> str: ...

    def date(self, iso: str) -> str: ...


DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The validator's words (a regular expression) -> the page's sentence (a `pay` msgid).
SENTENCES: dict[str, str] = {
    rf"pick a date after (?P<first>{DAY.pattern}) and no later than (?P<last>\S+)":
        N_("Please pick a date after %(first)s and no later than %(last)s."),
    r"grace is limited to (?P<days>\d+) days per grant":
        N_("You can ask for at most %(days)s more days."),
    r"grace is limited to \d+ days in total; .*":
        N_("No more time can be given for this payment."),
    r"message is required": N_("Please write a message."),
    r"message is limited to (?P<limit>\d+) characters":
        N_("Your message can be at most %(limit)s characters long."),
    r"the case is closed(: .*)?":
        N_("This payment is settled: nothing can be changed here any more."),
    r"the final action \(.*\) is already running|the case is still opening; .*":
        N_("This cannot be done right now. Please try again in a minute."),
    r"the case is paused; .*": N_("Payments for this invoice are on hold."),
    r"a charge is already in progress or queued":
        N_("We are already charging your card. Reload this page in a moment."),
}  # fmt: skip
PATTERNS = tuple((re.compile(words), sentence) for words, sentence in SENTENCES.items())


def refusal_text(message: str, words: Words) -> str:
    """The sentence the page shows for a validator's `message`."""
    for pattern, text in PATTERNS:
        found = pattern.fullmatch(message)
        if found is not None:
            values = {
                name: words.date(value) if DAY.fullmatch(value) else value
                for name, value in found.groupdict().items()
            }
            return words.gettext(text) % values if values else words.gettext(text)
    return words.gettext(message)
