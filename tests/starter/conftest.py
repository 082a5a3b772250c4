"""Fixtures shared by the starter tests (webhooks, support API, console, CLI).

Helpers shared with the workflow tests (`INSUFFICIENT`, `open_case`, `ledger_rows`, ...) live
in tests/workflows/helpers.py; waits use tests/deadline.py.
"""

from __future__ import annotations

import pytest

from models.settings import Settings
from tests.standin_control import SendGridControl, StripeControl


@pytest.fixture
def stripe_control(settings: Settings) -> StripeControl:
    return StripeControl(settings)


@pytest.fixture
def sendgrid(settings: Settings) -> SendGridControl:
    return SendGridControl(settings)
