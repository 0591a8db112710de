"""The app's upstream HTTP transport: one deadline for a whole exchange, the answer's body included, and a cap on
how much of that body is read."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Iterator

import httpx

from server.errors import ApiError

# Every answer the app reads from Truebar or Wiro is a small JSON object (a token, a task, a list of stages: a few
# KB). An upstream that sends more is broken or hostile; reading it whole would hold that much memory per request.
MAX_BODY_BYTES = 1024 * 1024


class UpstreamTooLarge(httpx.RemoteProtocolError):
    """The upstream's answer passed the transport's size limit; nothing more of it was read. A RemoteProtocolError,
    so a caller that does not name it still treats it as a failed exchange (a 502), never a crash."""


@contextlib.contextmanager
def upstream_call(who: str, *, unreachable: str = "") -> Iterator[None]:
    """One upstream exchange: its failures become the errors the client sees, the same for every provider (a
    timeout 504; too large, or unreachable, including a malformed configured URL, 502). `who` names the service
    ("Wiro", "Truebar's stage listing"); `unreachable` replaces the default "Could not reach <who>." message."""
    try:
        yield
    except httpx.TimeoutException:
        raise ApiError(504, "upstream_timeout", f"{who} did not answer in time.") from None
    except UpstreamTooLarge:
        raise ApiError(502, "upstream_too_large", f"{who} sent an answer too large to read.") from None
    except (httpx.HTTPError, httpx.InvalidURL):
        raise ApiError(502, "upstream_unreachable", unreachable or f"Could not reach {who}.") from None


class DeadlineTransport(httpx.AsyncBaseTransport):
    """httpx's timeouts bound each network operation, not the exchange: an upstream that sends its answer a byte
    at a time, each within the read timeout, never trips them. This raises httpx.ReadTimeout once `seconds` have
    passed since the request started, so callers map it like any other timeout (to a 504).

    It also stops reading an answer at `max_body_bytes` (decoded, so a small compressed body cannot expand past it)
    and raises UpstreamTooLarge."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.inner = inner
        self.seconds = seconds
        self.max_body_bytes = max_body_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Compression buys nothing on answers this small, and an uncompressed body is the one whose size is known
        # as it is read. An upstream that compresses anyway is decoded here, within the same limit.
        request.headers["Accept-Encoding"] = "identity"
        try:
            async with asyncio.timeout(self.seconds):
                response = await self.inner.handle_async_request(request)
                try:
                    body = await self._read(response, request)
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
        headers = httpx.Headers(response.headers)
        # The body is decoded already: the client must not decode it again, nor trust the old length.
        for name in ("content-encoding", "content-length"):
            headers.pop(name, None)
        return httpx.Response(response.status_code, headers=headers, content=body, extensions=response.extensions)

    async def _read(self, response: httpx.Response, request: httpx.Request) -> bytes:
        limit = self.max_body_bytes
        too_large = UpstreamTooLarge(f"The upstream's answer is larger than {limit} bytes.", request=request)
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise too_large
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            decoder: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decoder = zlib.decompressobj()
        elif encoding in ("identity", ""):
            decoder = None
        else:
            raise httpx.DecodingError(f"Unsupported Content-Encoding {encoding!r}.", request=request)
        chunks: list[bytes] = []
        size = 0
        # The raw stream, not aiter_raw(): an in-memory response (a MockTransport's) was read already and can only
        # be iterated this way.
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        async for raw in stream:
            try:
                # At most one byte past the limit per chunk: enough to know it was passed, never a bomb's worth.
                chunk = decoder.decompress(raw, limit - size + 1) if decoder is not None else raw
            except zlib.error:
                raise httpx.DecodingError("The upstream's compressed answer is corrupt.", request=request) from None
            size += len(chunk)
            if size > limit or (decoder is not None and decoder.unconsumed_tail):
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.inner.aclose()
