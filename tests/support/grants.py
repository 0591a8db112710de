"""A provider's grant as the client receives it (JSON-ready), for tests that call a provider directly."""

from __future__ import annotations

from typing import Any

from server.providers.base import Provider, SessionRequest
from server.wire import dump


async def created(provider: Provider, request: SessionRequest) -> dict[str, Any]:
    grant: dict[str, Any] = dump(await provider.create_session(request))
    return grant
