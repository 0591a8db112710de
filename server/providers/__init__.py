"""One module per provider, the same shape each (see base.Provider)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from server.engine.config import EngineConfig
from server.engine.types import Recognizer
from server.metrics import Metrics
from server.providers.base import Provider
from server.settings import Settings
from server.state import State

# Builds one more provider from the lifespan's HTTP client and shared state (create_app's `extra_providers`).
ProviderFactory = Callable[[httpx.AsyncClient, State], Provider]


def build_providers(
    settings: Settings,
    http: httpx.AsyncClient,
    state: State,
    *,
    local_recognizer: Recognizer | None = None,
    engine_loader: Callable[[EngineConfig], Recognizer] | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Provider]:
    """The providers in the order the page lists them: the offline engine first, as the default."""
    from server.engine.loader import load_engine
    from server.providers.local import LocalProvider
    from server.providers.truebar import TruebarProvider
    from server.providers.wiro import WiroProvider

    providers: list[Provider] = [
        LocalProvider(
            settings, state=state, recognizer=local_recognizer, loader=engine_loader or load_engine, metrics=metrics
        ),
        TruebarProvider(settings.truebar, http),
        WiroProvider(settings.wiro, http, state=state, per_client=settings.max_sessions_per_client),
    ]
    return {p.name: p for p in providers}
