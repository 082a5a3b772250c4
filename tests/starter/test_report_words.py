"""The report reads the same on the console's page and in the CLI."""

from __future__ import annotations

import pytest

from starter.support.report import duration_words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "—"),
        (22.4, "22 s"),
        (14 * 60, "14 min"),
        (5.2 * 3600, "5.2 h"),
        (3.4 * 86400, "3.4 days"),
    ],
)
def test_durations_read_the_same_on_the_page_and_in_the_cli(
    seconds: float | None, words: str
) -> None:
    assert duration_words(seconds) == words
