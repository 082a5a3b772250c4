"""Serve the SendGrid stand-in: `python -m standins.sendgrid_api --port 12112`.

SENDGRID_EVENT_WEBHOOK_URL (or --event-webhook-url) is where its signed Event Webhook posts;
SENDGRID_STANDIN_SIGNING_KEY (a PEM P-256 private key) keeps its key pair across restarts.
The verification key to give the receiver is printed at start.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from . import create_app
from .events import EventWebhookConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.sendgrid_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12112)
    parser.add_argument("--api-key", default=None, help="only accept this bearer token")
    parser.add_argument(
        "--event-webhook-url",
        default=os.environ.get("SENDGRID_EVENT_WEBHOOK_URL") or None,
        help="where signed event batches go (default: SENDGRID_EVENT_WEBHOOK_URL)",
    )
    args = parser.parse_args(argv)
    events = EventWebhookConfig(
        url=args.event_webhook_url,
        private_key_pem=os.environ.get("SENDGRID_STANDIN_SIGNING_KEY") or None,
    )
    app = create_app(api_key=args.api_key, events=events)
    print(f"Event Webhook → {events.url or '(no URL: events only listed)'}", flush=True)
    print(f"SENDGRID_WEBHOOK_PUBLIC_KEY={app.state.events.public_key}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
