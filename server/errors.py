"""The one error type of the app's HTTP API, in the style of Starlette's HTTPException (which it is)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException


class ApiError(HTTPException):
    """A failure the client sees as `{"error": {"code", "message"}}` with `status_code` (and Retry-After when
    `retry_after` is given). Raised by routes and providers alike; the app's exception handler answers it.
    `message` must never contain a secret or an upstream body verbatim."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        headers = dict(headers or {})
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, round(retry_after)))
        super().__init__(status_code, detail=message, headers=headers or None)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}
