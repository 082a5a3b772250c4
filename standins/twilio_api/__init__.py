"""Local stand-in for Twilio's Programmable Messaging REST API (tests and `dunning dev`).

Sends, fetches and lists messages as the real `twilio` SDK expects, answers with Twilio's
error codes, moves messages through their statuses and signs its status callbacks and
incoming-message webhooks with `X-Twilio-Signature`.
"""

from .app import create_app
from .config import TwilioStandinConfig
from .signature import sign

__all__ = ["TwilioStandinConfig", "create_app", "sign"]
