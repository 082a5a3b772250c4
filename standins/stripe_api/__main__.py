"""`python -m standins.stripe_api --port 12111 [--webhook-url URL --webhook-secret whsec_...]`."""

from __future__ import annotations

import argparse

import uvicorn

from . import StripeStandinConfig, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.stripe_api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    args = parser.parse_args(argv)
    config = StripeStandinConfig(webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
