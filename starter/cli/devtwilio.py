"""The Twilio stand-in in `dunning dev`: SMS of the demo cases, until TWILIO_ACCOUNT_SID is set.

Kept apart from devstack.py (one place per provider). The stand-in signs its status callbacks
and incoming texts as Twilio does, with the same auth token the API verifies them with.
"""

from __future__ import annotations

from typing import Any

TWILIO_PORT = 12113


def start_twilio(servers: list[Any], env: dict[str, str], api_url: str, real: bool) -> str:
    """Start the stand-in (unless the real Twilio is configured) and point `env` at it; the
    line to show in `dunning dev`'s steps."""
    if real:
        return "real Twilio (TWILIO_ACCOUNT_SID is set)"
    from standins.server import BackgroundServer
    from standins.twilio_api import TwilioStandinConfig, create_app
    from starter.cli.processes import require_free

    config = TwilioStandinConfig(inbound_url=f"{api_url}/webhooks/twilio", status_step_seconds=1.0)
    require_free(TWILIO_PORT, "the Twilio stand-in")
    twilio = BackgroundServer(create_app(config), port=TWILIO_PORT).start()
    servers.append(twilio)
    env.update(
        TWILIO_ACCOUNT_SID=config.account_sid,
        TWILIO_AUTH_TOKEN=config.auth_token,
        TWILIO_FROM=config.numbers[0],
        TWILIO_API_BASE=twilio.url,
        DUNNING_PUBLIC_URL=api_url,
    )
    return f"{twilio.url} (texts: GET /_standin/messages)"
