"""The callback endpoint WeCom calls (aiohttp): URL verification and messages.

A POST is checked (signature, CorpID, padding: 403 otherwise, nothing processed), recorded
in the inbox table and answered with an empty 200 at once; handling and answering happen
afterwards through the send API, so WeCom's 5-second wait is never the core's problem.

The endpoint runs in a process of its own (multiprocessing, spawn) with its own connection
to the store (the SQLite file, or PostgreSQL shared by every instance): the acknowledgement
never waits for the core, which holds the main process's event loop, its database connection
and its interpreter lock. Measured at 200 busy members:
p99 1.6 s on the main event loop, 325 ms for a same-instant burst on a thread of its own (the
interpreter lock), see BENCHMARKS.md. The process tells the main one about each recorded
callback over a pipe; the inbox table, not the pipe, is what counts: a callback recorded
while the main process was away is found in the table at the next start, or by another
instance's sweep (bot/inbox_drain.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.channels.wecom.crypto import WeComCrypto, WeComCryptoError
from bot.channels.wecom.messages import MessageParseError, parse_envelope, parse_message
from bot.config import SettingsError
from bot.storage.db import iso

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)
START_TIMEOUT = 30.0  # seconds for the endpoint process to listen
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class EndpointConfig:
    """Everything the endpoint process needs (pickled to it)."""

    token: str
    aes_key: str
    corp_id: str
    agent_id: int
    db_path: str
    database_url: str | None  # PostgreSQL, shared by the instances; None: the file db_path
    path: str
    max_bytes: int
    max_age_seconds: float
    host: str
    port: int


# Recorded once: a redelivered (same MsgId / event key) or replayed callback changes nothing.
RECORD = ("INSERT INTO wecom_inbox(dedupe_key, external_id, xml, received_at) "
          "VALUES (?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING")


class SqliteInbox:
    """The inbox in the SQLite file: one plain connection (WAL is on, the main process set
    it); a write here waits for SQLite's lock, briefly, never for the core."""

    def __init__(self, db_path: str) -> None:
        self.conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA synchronous=NORMAL")

    async def open(self) -> None:
        return None

    async def record(self, params: tuple[str, str, str, str]) -> bool:
        return self.conn.execute(RECORD, params).rowcount == 1

    async def close(self) -> None:
        self.conn.close()


class PgInbox:
    """The inbox on PostgreSQL, which every instance's endpoint writes: a few pooled
    connections, so callbacks arriving together are recorded side by side."""

    POOL = 4

    def __init__(self, url: str) -> None:
        self.url = url
        self.sql = RECORD
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        import asyncpg

        from bot.storage.pg import pg_sql  # only here: a SQLite deployment never loads it

        self.sql = pg_sql(RECORD)
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.POOL)

    async def record(self, params: tuple[str, str, str, str]) -> bool:
        assert self.pool is not None
        return bool(await self.pool.execute(self.sql, *params) == "INSERT 0 1")

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class Endpoint:
    """The request handlers; `notify(kind, value)` reports "new" (a recorded callback's
    sender), "dup" and "refused"."""

    def __init__(self, cfg: EndpointConfig, notify: Callable[[str, str], None],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.crypto = WeComCrypto(cfg.token, cfg.aes_key, cfg.corp_id)
        self.notify = notify
        self._wall = wall_clock
        self.inbox = PgInbox(cfg.database_url) if cfg.database_url else SqliteInbox(cfg.db_path)

    def app(self) -> web.Application:
        # client_max_size bounds what aiohttp reads; the handler checks the exact cap too.
        app = web.Application(client_max_size=self.cfg.max_bytes + 1)
        app.router.add_get(self.cfg.path, self._verify)
        app.router.add_post(self.cfg.path, self._message)
        return app

    def _refuse(self, why: str, request: web.Request, status: int = 403) -> web.Response:
        log.warning("WeCom callback refused (%s) from %s", why, request.remote)
        self.notify("refused", why)
        return web.Response(status=status)

    def _stale(self, timestamp: str) -> bool:
        """A signed callback stays valid forever: one older than the inbox keeps its keys
        is refused, so an old recording cannot be replayed once its key is forgotten."""
        try:
            return abs(self._wall() - int(timestamp)) > self.cfg.max_age_seconds
        except ValueError:
            return True

    async def _record(self, dedupe_key: str, external_id: str, xml: str) -> bool:
        """Keep a callback before answering it; False if it was recorded before."""
        return await self.inbox.record((dedupe_key, external_id, xml,
                                        iso(datetime.now(UTC))))

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
        try:  # the whole body, however many pieces it comes in (one read gives the first)
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # past client_max_size: not read further
            return self._refuse("body too large", request, 413)
        if len(body) > self.cfg.max_bytes:
            return self._refuse("body too large", request, 413)
        try:
            envelope = parse_envelope(body, max_bytes=self.cfg.max_bytes)
        except MessageParseError as exc:
            return self._refuse(f"unreadable: {exc}", request, 400)
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
        if msg.agent_id is not None and msg.agent_id != self.cfg.agent_id:
            log.warning("WeCom callback for AgentId %s ignored (this app is %s)", msg.agent_id,
                        self.cfg.agent_id)
            return web.Response(text="")
        if await self._record(msg.dedupe_key, msg.from_user, inner):
            self.notify("new", msg.from_user)
        else:
            self.notify("dup", msg.from_user)
        return web.Response(text="")


def _endpoint_main(cfg: EndpointConfig, events: multiprocessing.connection.Connection,
                   control: multiprocessing.connection.Connection) -> None:
    """The endpoint process: serve until the main process says stop or goes away."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C reaches the whole process group
        asyncio.run(_serve(cfg, events, control))


async def _serve(cfg: EndpointConfig, events: multiprocessing.connection.Connection,
                 control: multiprocessing.connection.Connection) -> None:
    try:
        endpoint = Endpoint(cfg, lambda kind, value: events.send((kind, value)))
        await endpoint.inbox.open()
        runner = web.AppRunner(endpoint.app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
    except Exception as exc:  # the database is gone ...
        events.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        await web.TCPSite(runner, cfg.host, cfg.port).start()
    except OSError as exc:  # the port is taken, the address is not this machine's ...
        await runner.cleanup()
        await endpoint.inbox.close()
        events.send(("listen", exc.strerror or str(exc)))
        return
    events.send(("ready", str(runner.addresses[0][1])))
    try:
        # A control message ("stop") or EOF (the main process is gone) ends the serving.
        with contextlib.suppress(EOFError, OSError):
            await asyncio.to_thread(control.recv)
    finally:
        await runner.cleanup()
        await endpoint.inbox.close()


class CallbackServer:
    """The endpoint process, seen from the main process."""

    def __init__(self, cfg: EndpointConfig, on_new: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.on_new = on_new
        self.refused = 0
        self.duplicates = 0
        self.port: int | None = None
        self._proc: Any = None
        self._events: multiprocessing.connection.Connection | None = None
        self._control: multiprocessing.connection.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no copy of the main process's threads
        events_r, events_w = ctx.Pipe(duplex=False)
        control_r, control_w = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_endpoint_main, args=(self.cfg, events_w, control_r),
                                 name="wecom-callback", daemon=True)
        self._proc.start()
        events_w.close()
        control_r.close()
        self._events, self._control = events_r, control_w
        if not await asyncio.to_thread(events_r.poll, START_TIMEOUT):
            await self.stop()
            raise RuntimeError("the WeCom callback endpoint did not start")
        kind, value = events_r.recv()
        if kind == "listen":
            await self.stop()
            where = f"{self.cfg.host}:{self.cfg.port}"
            raise SettingsError(
                f"invalid setting TAIQU_WECOM_LISTEN: cannot listen on {where} ({value}); "
                f"another program, or a taiqu-bot still stopping, uses it: stop it or choose "
                f"another port / 无法监听 {where}，端口被其他程序占用")
        if kind != "ready":
            await self.stop()
            raise RuntimeError(f"the WeCom callback endpoint could not start: {value}")
        self.port = int(value)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(events_r.fileno(), self._read_events)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _read_events(self) -> None:
        assert self._events is not None
        try:
            while self._events.poll():
                kind, value = self._events.recv()
                if kind == "new":
                    self.on_new(value)
                elif kind == "dup":
                    self.duplicates += 1
                elif kind == "refused":
                    self.refused += 1
        except (EOFError, OSError):  # the endpoint process ended: the watchdog restarts it
            self._unwatch()

    def _unwatch(self) -> None:
        if self._loop is not None and self._events is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._events.fileno())
        self._loop = None

    async def stop(self) -> None:
        if self._proc is None:
            return
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.send("stop")
        await asyncio.to_thread(self._proc.join, STOP_TIMEOUT)
        if self._proc.is_alive():
            self._proc.terminate()
            await asyncio.to_thread(self._proc.join, STOP_TIMEOUT)
        if self._events is not None:
            self._read_events()  # what it reported last
        self._unwatch()
        for conn in (self._events, self._control):
            if conn is not None:
                conn.close()
        self._proc = self._events = self._control = None
