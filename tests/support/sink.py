"""A WebSocket endpoint that keeps every frame each connection sent, so browser tests can check the PCM exactly.
Test-only: mounted with create_app(..., extra_routes=sink.routes()), never by the shipped app."""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


class PcmSink:
    def __init__(self) -> None:
        self.sessions: dict[str, list[bytes]] = {}
        self.texts: dict[str, list[str]] = {}

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute("/api/test/sink", self.handle)]

    async def handle(self, websocket: WebSocket) -> None:
        key = websocket.query_params.get("id", "default")
        frames = self.sessions.setdefault(key, [])
        texts = self.texts.setdefault(key, [])
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    frames.append(message["bytes"])
                elif message.get("text") is not None:
                    texts.append(message["text"])
                    if message["text"] == "bye":
                        await websocket.close(1000)
                        return
        except WebSocketDisconnect:
            return

