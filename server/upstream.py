"""The app's upstream HTTP transport: one deadline for a whole exchange, the answer's body included."""

from __future__ import annotations

import asyncio

import httpx


class DeadlineTransport(httpx.AsyncBaseTransport):
    """httpx's timeouts bound each network operation, not the exchange: an upstream that sends its answer a byte
    at a time, each within the read timeout, never trips them. This raises httpx.ReadTimeout once `seconds` have
    passed since the request started, so callers map it like any other timeout (to a 504)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with asyncio.timeout(self.seconds):
                response = await self.inner.handle_async_request(request)
                try:
                    # Raw bytes: the client decodes any Content-Encoding itself, once.
                    body = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout("The upstream did not finish answering in time.", request=request) from None
        except httpx.HTTPError:
            raise
        except (OSError, OverflowError, ExceptionGroup) as exc:
            # What the connection layer lets through unwrapped: a port past 65535 (OverflowError, inside anyio's
            # ExceptionGroup), a socket error. Callers handle every failure to connect as httpx's own.
            raise httpx.ConnectError(f"Could not connect: {type(exc).__name__}", request=request) from None
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
