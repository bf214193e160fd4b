"""The callback endpoint WeCom calls (aiohttp): URL verification and messages.

A POST is checked (signature, CorpID, padding: 403 otherwise, nothing processed), recorded
in the inbox table and answered with an empty 200 at once; handling and answering happen
afterwards through the send API, so WeCom's 5-second wait is never the core's problem.

The endpoint runs on a thread of its own, with its own event loop and its own SQLite
connection: the acknowledgement then never waits for the core's work, which holds the main
event loop and the shared connection (measured: p99 1.6 s at 200 busy members when it
shared them, see BENCHMARKS.md). It hands a recorded callback to the main loop with
call_soon_threadsafe."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from bot.channels.wecom.crypto import WeComCrypto, WeComCryptoError
from bot.channels.wecom.messages import MessageParseError, parse_envelope, parse_message
from bot.clock import Clock
from bot.storage.db import iso

log = logging.getLogger(__name__)


class CallbackServer:
    def __init__(self, crypto: WeComCrypto, db_path: Path, clock: Clock, *,
                 agent_id: int, path: str, max_bytes: int, max_age_seconds: float,
                 on_new: Callable[[str], None],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.crypto = crypto
        self.db_path = db_path
        self.clock = clock
        self.agent_id = agent_id
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age_seconds
        self.on_new = on_new
        self._wall = wall_clock
        self.refused = 0
        self.duplicates = 0
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._main: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        # client_max_size bounds what aiohttp reads; the handler checks the exact cap too.
        app = web.Application(client_max_size=self.max_bytes + 1)
        app.router.add_get(self.path, self._verify)
        app.router.add_post(self.path, self._message)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0: any free port, see `port`) on the endpoint's thread."""
        self._main = asyncio.get_running_loop()
        started: asyncio.Future[None] = self._main.create_future()
        self._thread = threading.Thread(target=self._serve, args=(host, port, started),
                                        name="wecom-callback", daemon=True)
        self._thread.start()
        await started

    def _serve(self, host: str, port: int, started: asyncio.Future[None]) -> None:
        main = self._main
        assert main is not None
        loop = self._loop = asyncio.new_event_loop()
        try:
            # WAL is already on (the main connection set it); writes here wait for SQLite's
            # lock, briefly, never for the core.
            self._conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, host, port).start())
            self.port = self._runner.addresses[0][1]
        except BaseException as exc:  # the port is taken, the database is gone ...
            main.call_soon_threadsafe(_settle, started, exc)
            loop.close()
            return
        main.call_soon_threadsafe(_settle, started, None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            self._conn.close()
            loop.close()

    async def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        self._loop = self._thread = None

    def _record(self, dedupe_key: str, external_id: str, xml: str) -> bool:
        """Keep a callback before answering it; False if it was recorded before."""
        assert self._conn is not None
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO wecom_inbox(dedupe_key, external_id, xml, received_at) "
            "VALUES (?, ?, ?, ?)", (dedupe_key, external_id, xml, iso(self.clock.now())))
        return cur.rowcount == 1

    def _refuse(self, why: str, request: web.Request) -> web.Response:
        self.refused += 1
        log.warning("WeCom callback refused (%s) from %s", why, request.remote)
        return web.Response(status=403)

    def _stale(self, timestamp: str) -> bool:
        """A signed callback stays valid forever: one older than the inbox keeps its keys
        is refused, so an old recording cannot be replayed once its key is forgotten."""
        try:
            return abs(self._wall() - int(timestamp)) > self.max_age
        except ValueError:
            return True

    async def _verify(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            plain = self.crypto.verify_url(q.get("msg_signature", ""), q.get("timestamp", ""),
                                           q.get("nonce", ""), q.get("echostr", ""))
        except WeComCryptoError as exc:
            return self._refuse(exc.reason.value, request)
        log.info("WeCom callback URL verified")
        return web.Response(text=plain, content_type="text/plain")

    async def _message(self, request: web.Request) -> web.Response:
        q = request.query
        body = await request.content.read(self.max_bytes + 1)
        if len(body) > self.max_bytes:
            self.refused += 1
            return web.Response(status=413)
        try:
            envelope = parse_envelope(body, max_bytes=self.max_bytes)
        except MessageParseError as exc:
            self.refused += 1
            log.warning("WeCom callback unreadable (%s) from %s", exc, request.remote)
            return web.Response(status=400)
        timestamp = q.get("timestamp", "")
        try:
            inner = self.crypto.decrypt_msg(q.get("msg_signature", ""), timestamp,
                                            q.get("nonce", ""), envelope.encrypt)
        except WeComCryptoError as exc:
            return self._refuse(exc.reason.value, request)
        if self._stale(timestamp):
            return self._refuse("timestamp too old", request)
        try:
            msg = parse_message(inner)
        except MessageParseError as exc:  # authentic but not for us to read: no retries
            log.warning("WeCom callback ignored: %s", exc)
            return web.Response(text="")
        if msg.agent_id is not None and msg.agent_id != self.agent_id:
            log.warning("WeCom callback for AgentId %s ignored (this app is %s)", msg.agent_id,
                        self.agent_id)
            return web.Response(text="")
        if self._record(msg.dedupe_key, msg.from_user, inner):
            assert self._main is not None
            self._main.call_soon_threadsafe(self.on_new, msg.from_user)
        else:
            self.duplicates += 1
        return web.Response(text="")


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
