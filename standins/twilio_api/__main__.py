"""`python -m standins.twilio_api --port 12113 [--inbound-url URL]`.

Settings also come from the environment: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM
(the account's number), TWILIO_MESSAGING_SERVICE_SID and TWILIO_STANDIN_INBOUND_URL; flags win.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from . import TwilioStandinConfig, create_app
from .config import DEFAULT_MESSAGING_SERVICE_SID, DEFAULT_NUMBER


def main(argv: list[str] | None = None) -> None:
    env = os.environ
    defaults = TwilioStandinConfig()
    parser = argparse.ArgumentParser(prog="python -m standins.twilio_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12113)
    parser.add_argument(
        "--account-sid", default=env.get("TWILIO_ACCOUNT_SID", defaults.account_sid)
    )
    parser.add_argument("--auth-token", default=env.get("TWILIO_AUTH_TOKEN", defaults.auth_token))
    parser.add_argument("--number", default=env.get("TWILIO_FROM", DEFAULT_NUMBER))
    parser.add_argument(
        "--messaging-service-sid",
        default=env.get("TWILIO_MESSAGING_SERVICE_SID", DEFAULT_MESSAGING_SERVICE_SID),
    )
    parser.add_argument("--inbound-url", default=env.get("TWILIO_STANDIN_INBOUND_URL"))
    parser.add_argument("--status-step-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    # TWILIO_FROM may name a Messaging Service instead of a number (MG…).
    numbers = [DEFAULT_NUMBER] if args.number.startswith("MG") else [args.number]
    services = [args.messaging_service_sid]
    if args.number.startswith("MG"):
        services.append(args.number)
    config = TwilioStandinConfig(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        numbers=numbers,
        messaging_service_sids=services,
        inbound_url=args.inbound_url,
        status_step_seconds=args.status_step_seconds,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
