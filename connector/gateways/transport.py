"""httpx transports that send every request to a configured base URL.

The official `dimescheduler` SDK takes its base URL from its `Environment` enum only, but accepts an
httpx transport: these rewrite each request's scheme, host and port (and prefix the base URL's path)
so the same SDK reaches the local emulator or a private deployment.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx


class _Target:
    """Where requests go: parsed once, applied to every request."""

    def __init__(self, base_url: str) -> None:
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.hostname:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.scheme, self.host, self.port, self.netloc = base.scheme, base.hostname, base.port, base.netloc
        self.prefix = base.path.rstrip("/").encode()

    def rewrite(self, request: httpx.Request) -> None:
        request.url = request.url.copy_with(
            scheme=self.scheme, host=self.host, port=self.port, raw_path=self.prefix + request.url.raw_path
        )
        request.headers["Host"] = self.netloc


class BaseUrlTransport(httpx.BaseTransport):
    """A synchronous transport that sends every request to ``base_url`` instead."""

    def __init__(self, base_url: str, inner: httpx.BaseTransport | None = None) -> None:
        self._target = _Target(base_url)
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._target.rewrite(request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class AsyncBaseUrlTransport(httpx.AsyncBaseTransport):
    """The same for ``httpx.AsyncClient``."""

    def __init__(self, base_url: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._target = _Target(base_url)
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._target.rewrite(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
