"""The Bot API's HTTP requests on aiohttp's client: PTB's BaseRequest, as its HTTPXRequest.

Why not PTB's default HTTPXRequest: measured (BENCHMARKS.md, "Issue #12, fourth pass"), httpx
and httpcore took about half of the bot's CPU per chat step (1.2 of 2.3 ms): on each request's
start and end httpcore walks every pooled connection and asks each idle one's socket whether it
is readable (through anyio's attribute dict, a getpeername() each), and every read and write
passes anyio's cancel scopes. aiohttp's client (already a dependency: the webhook and WeCom
endpoints are aiohttp servers) sends the same requests with a C parser and a pool that is not
walked: a step costs ~1.1 ms. PTB documents BaseRequest as the way to bring another HTTP
library; this module only maps its arguments, timeouts and errors onto aiohttp's.
"""

from __future__ import annotations

import re
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import certifi
from aiohttp import payload
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

KEEPALIVE_S = 5.0  # as httpx's default: an idle connection is closed before Telegram drops it

# A request that failed with one of these never left: Telegram cannot have seen it (the
# connection was refused or not made in time, no pooled connection came free in time, or the
# URL is not one: a misconfigured TAIQU_TELEGRAM_BASE_URL).
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL)
_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


def maybe_delivered(exc: TelegramError) -> bool:
    """True when the request may have reached Telegram but the answer was lost (read timeout,
    connection reset or closed after writing). An HTTP error answer (502 ...) means it was not
    done, and so does a connection that was never made."""
    cause = exc.__cause__
    return (isinstance(cause, aiohttp.ClientError | TimeoutError)
            and not isinstance(cause, _NOT_SENT))


def _urlencoded(fields: dict[str, str]) -> payload.BytesPayload:
    """The body aiohttp makes of a dict of fields (FormData's x-www-form-urlencoded), made
    directly: given the dict, aiohttp first tries every payload type on it (failing with an
    exception), then builds a FormData, whose multipart writer draws a uuid4 boundary it never
    uses: ~50 us of CPU a request, ~16 this way, the same bytes and headers (issue #12)."""
    return payload.BytesPayload(urlencode(fields, doseq=True).encode(),
                                content_type="application/x-www-form-urlencoded")


def _or(value: Any, default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _sum(*parts: float | None) -> float | None:
    """None (no limit) when any part has none."""
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


class AiohttpRequest(BaseRequest):
    """One aiohttp session with at most `connection_pool_size` connections. The timeouts mean
    what HTTPXRequest's do, with its defaults. aiohttp has no write timeout: a request that
    uploads files is bounded as a whole instead (pool + connect + media write + read); a
    message's few hundred bytes go in one write."""

    def __init__(self, connection_pool_size: int = 1, *, read_timeout: float | None = 5.0,
                 connect_timeout: float | None = 5.0, pool_timeout: float | None = 1.0,
                 media_write_timeout: float | None = 20.0) -> None:
        self._size = connection_pool_size
        self._read, self._media_write = read_timeout, media_write_timeout
        self._connect, self._pool = connect_timeout, pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}  # scheme://host:port -> its proxy

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # Made here, not in __init__: a session belongs to the running event loop.
            # As httpx did: Mozilla's CA bundle (certifi), not the system's, which a minimal
            # server image may lack. Not aiohttp's trust_env: it looks up .netrc and the proxy
            # in a worker thread on every request (measured: +0.5 ms of CPU per step); the
            # proxy is looked up once per host instead (_proxy_for).
            tls = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._size, keepalive_timeout=KEEPALIVE_S,
                                               ssl=tls),
                headers={"User-Agent": self.USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar())  # the Bot API sets none

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _proxy_for(self, url: str) -> str | None:
        """The proxy HTTP(S)_PROXY / NO_PROXY name for this URL's host, as httpx honoured them
        (a server that reaches Telegram only through a proxy keeps working); read once per
        host, as httpx read them once."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._proxies:
            bypass = urllib.request.proxy_bypass(parts.hostname or "")
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[key]

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        read, connect = _or(read_timeout, self._read), _or(connect_timeout, self._connect)
        # aiohttp's `connect` is the wait for a pooled connection plus making a new one.
        acquire = _sum(_or(pool_timeout, self._pool), connect)
        total = None
        if files:
            total = _sum(acquire, _or(write_timeout, self._media_write), read)
        timeout = aiohttp.ClientTimeout(total=total, connect=acquire, sock_connect=connect,
                                        sock_read=read)
        data: Any = _urlencoded(fields) if fields else None
        if files:
            # Names as UTF-8, as httpx and browsers send them: aiohttp would percent-encode
            # them, and Telegram would show 工作汇总.xlsx as %E5%B7%A5....xlsx.
            form = aiohttp.FormData(fields or {}, quote_fields=False)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            data = form
        try:
            async with self._session.request(method, url, data=data, timeout=timeout,
                                             proxy=self._proxy_for(url)) as res:
                return res.status, await res.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimedOut("Connection or pool timeout: the request was *not* sent to "
                           "Telegram.") from exc
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError (a read) is one too
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # The class name says what happened even when the message is empty; a URL in the
            # message would carry the bot token.
            message = _TOKEN_IN_URL.sub("/bot<token>/", str(exc))
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {message}") from exc
