"""Request size limits of the feature server, enforced before a body is parsed.

:class:`BodyLimit` is ASGI middleware: a declared ``Content-Length`` above the limit is
answered 413 at once, and a body sent without one (chunked) is read only up to the limit, so
no request can make the server hold more than ``max_body_bytes`` of it. The rest of a refused
body is read and dropped (up to 64 MiB, so the client can read its 413 instead of a connection
reset), then the connection is closed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit", "too_large"]

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_App = Callable[[_Message, _Receive, _Send], Awaitable[None]]
_DRAIN_BYTES = 64 * 1024 * 1024


def too_large(detail: str) -> dict[str, str]:
    """The JSON body of a 413 answer."""
    return {"error": "RequestTooLarge", "detail": detail}


class BodyLimit:
    """Answer 413 to request bodies larger than ``max_bytes`` (see the module docstring)."""

    def __init__(self, app: _App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: _Message, receive: _Receive, send: _Send) -> None:
        """Check the declared length, else read the body up to the limit and replay it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._drain(receive, 0, int(declared) <= _DRAIN_BYTES)
                await self._refuse(send, int(declared))
                return
            await self.app(scope, receive, send)  # the server stops reading at the length
            return
        messages: list[_Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                if message.get("more_body", False):
                    size = await self._drain(receive, size, True)
                await self._refuse(send, size)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> _Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: _Receive, size: int, wanted: bool) -> int:
        """Read and drop the rest of a refused body (at most 64 MiB); the bytes seen."""
        while wanted and size <= _DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return size

    async def _refuse(self, send: _Send, size: int) -> None:
        body = json.dumps(
            too_large(
                f"request body of {size} bytes exceeds server.max_body_bytes "
                f"({self.max_bytes}). Fix: send fewer entity rows per request."
            )
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
