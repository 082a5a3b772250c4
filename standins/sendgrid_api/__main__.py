"""Serve the SendGrid stand-in: `python -m standins.sendgrid_api --port 12112`."""

from __future__ import annotations

import argparse

import uvicorn

from . import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.sendgrid_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12112)
    parser.add_argument("--api-key", default=None, help="only accept this bearer token")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(api_key=args.api_key), host=args.host, port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
