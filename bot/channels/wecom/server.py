"""The callback endpoint WeCom calls (aiohttp): URL verification and messages.

A POST is checked (signature, CorpID, padding: 403 otherwise, nothing processed), recorded
in the inbox table and answered with an empty 200 at once; handling and answering happen
afterwards through the send API, so WeCom's 5-second wait is never the core's problem."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.channels.wecom.crypto import WeComCrypto, WeComCryptoError
from bot.channels.wecom.messages import MessageParseError, parse_envelope, parse_message
from bot.channels.wecom.store import WeComStore
from bot.clock import Clock

log = logging.getLogger(__name__)


class CallbackServer:
    def __init__(self, crypto: WeComCrypto, store: WeComStore, clock: Clock, *,
                 agent_id: int, path: str, max_bytes: int, max_age_seconds: float,
                 on_new: Callable[[str], None],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.crypto = crypto
        self.store = store
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
        self.port: int | None = None

    def app(self) -> web.Application:
        # client_max_size bounds what aiohttp reads; the handler checks the exact cap too.
        app = web.Application(client_max_size=self.max_bytes + 1)
        app.router.add_get(self.path, self._verify)
        app.router.add_post(self.path, self._message)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
        if await self.store.record(msg.dedupe_key, msg.from_user, inner, self.clock.now()):
            self.on_new(msg.from_user)
        else:
            self.duplicates += 1
        return web.Response(text="")
