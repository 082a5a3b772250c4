"""The SendGrid stand-in in `dunning dev`: the demo cases' emails, until SENDGRID_API_KEY is set.

Kept apart from devstack.py (one place per provider). The stand-in signs its Event Webhook
batches with its own key pair and posts them to the API's `/webhooks/sendgrid`, which verifies
them with the stand-in's public key (SENDGRID_WEBHOOK_PUBLIC_KEY).
"""

from __future__ import annotations

from typing import Any

SENDGRID_PORT = 12112


def start_sendgrid(servers: list[Any], env: dict[str, str], api_url: str, real: bool) -> str:
    """Start the stand-in (unless the real SendGrid is configured) and point `env` at it; the
    line to show in `dunning dev`'s steps."""
    if real:
        return "real SendGrid (SENDGRID_API_KEY is set)"
    from standins.sendgrid_api import create_app
    from standins.sendgrid_api.events import EventWebhookConfig
    from standins.server import BackgroundServer

    events = EventWebhookConfig(url=f"{api_url}/webhooks/sendgrid")
    app = create_app(events=events)
    sendgrid = BackgroundServer(app, port=SENDGRID_PORT).start()
    servers.append(sendgrid)
    env.update(
        SENDGRID_API_KEY="SG.dev",
        SENDGRID_API_HOST=sendgrid.url,
        SENDGRID_WEBHOOK_PUBLIC_KEY=app.state.events.public_key,
    )
    return f"{sendgrid.url} (emails: GET /_standin/messages, events: GET /_standin/events)"
