"""Fixtures for the workflow scenarios: test-side controls of the stand-ins."""

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
