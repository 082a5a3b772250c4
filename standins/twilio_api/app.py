"""The HTTP surface: Twilio's Messages API under `/2010-04-01/`, plus `/_standin/` controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .config import TwilioStandinConfig
from .control import control_router
from .delivery import Deliverer
from .messages import messages_router
from .state import Store


def create_app(config: TwilioStandinConfig | None = None) -> FastAPI:
    config = config or TwilioStandinConfig()
    store = Store()
    deliverer = Deliverer(store, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        deliverer.stop()

    app = FastAPI(
        title="Twilio Messages API stand-in",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.store = store
    app.include_router(messages_router(config, store, deliverer))
    app.include_router(control_router(config, store, deliverer))
    return app
