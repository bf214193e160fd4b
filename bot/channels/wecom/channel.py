"""The WeCom (企业微信) self-built app as a channel of the assistant (issue #9).

callback (server.py) -> inbox table -> InboxWorker -> Assistant -> outbox table -> Sender
-> WeCom API. Each arrow that crosses a table survives a restart. On PostgreSQL several
instances share the tables (issue #11): any instance may receive any callback (the callback
URL behind a load balancer) and send any message; one person's callbacks are handled, and
their messages sent, one at a time and in order, whichever instance received them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.assistant import Assistant
from bot.channel import ChannelCaps, FileTooLarge, FileUnavailable, ReceivedFile
from bot.channels.wecom.api import (
    MAX_BUTTON_KEY_BYTES,
    MAX_CARD_BUTTONS,
    MAX_TEXT_BYTES,
    MEDIA_MAX_BYTES,
    WeComAPIError,
    WeComClient,
)
from bot.channels.wecom.config import WeComSettings, load_wecom_settings
from bot.channels.wecom.inbox import InboxWorker, fetch_media
from bot.channels.wecom.outbox import CHANNEL, Sender, WeComNotifier
from bot.channels.wecom.server import CallbackServer, EndpointConfig
from bot.channels.wecom.store import Budget, WeComStore
from bot.config import Settings
from bot.sendbudget import send_budget

log = logging.getLogger(__name__)

CAPS = ChannelCaps(max_text=MAX_TEXT_BYTES, text_unit="byte", max_buttons=MAX_CARD_BUTTONS,
                   max_button_data=MAX_BUTTON_KEY_BYTES, can_edit=False, toasts=False,
                   menus_per_language=False)
TIDY_SECONDS = 30.0  # the endpoint process is looked after this often
PRUNE_EVERY = 120  # ... and old rows pruned every this many rounds (an hour)


class WeComChannel:
    name = CHANNEL
    caps = CAPS

    def __init__(self, assistant: Assistant, core_settings: Settings | None = None, *,
                 wecom: WeComSettings | None = None,
                 client: WeComClient | None = None) -> None:
        """`core_settings` is what bot.serve hands every channel; the core's settings and
        database come with the assistant, WeCom's own are TAIQU_WECOM_* (`wecom`)."""
        services = assistant.services
        settings = wecom or load_wecom_settings()
        self.assistant = assistant
        self.services = services
        self.settings = settings
        self.client = client or WeComClient.from_settings(settings)
        self.store = WeComStore(services.db, Budget(
            settings.per_user_per_minute, settings.per_user_per_hour,
            reply_reserve=settings.reply_reserve_per_minute),
            claim_seconds=services.settings.inbox_claim_seconds)
        app_budget = send_budget(  # the app's limit, shared by the instances on PostgreSQL
            services.db, f"wecom.app:{settings.corp_id}:{settings.agent_id}",
            settings.sends_per_second, burst=int(settings.sends_per_second),
            push_min_share=services.settings.push_min_share,
            instances=services.settings.instances)
        self.sender = Sender(self.client, self.store, services.clock,
                             workers=4 * settings.workers, app_budget=app_budget)
        self.notifier = WeComNotifier(services, self.sender)
        self.inbox = InboxWorker(assistant, services, self.client, self.store, self.sender,
                                 workers=settings.workers)
        host, port = settings.listen.rsplit(":", 1)
        self.server = CallbackServer(EndpointConfig(
            token=settings.token, aes_key=settings.aes_key, corp_id=settings.corp_id,
            agent_id=settings.agent_id, db_path=str(services.settings.db_path),
            database_url=services.settings.database_url, path=settings.path,
            max_bytes=settings.callback_max_bytes,
            max_age_seconds=settings.callback_max_age_seconds, host=host, port=int(port)),
            on_new=self.inbox.poke)
        self._housekeeping: asyncio.Task[None] | None = None
        assistant.register_channel(self.name, self.caps, files=self)

    async def fetch_file(self, ref: str, max_bytes: int) -> ReceivedFile:
        """A file message's bytes by its MediaId (valid 3 days). WeCom carries files of at
        most 20 MB and tells no size before media/get: the cap is checked on what came."""
        try:
            media = await fetch_media(self.client, ref)
        except WeComAPIError as exc:
            raise FileUnavailable(str(exc)) from exc
        if len(media.content) > min(max_bytes, MEDIA_MAX_BYTES["file"]):
            raise FileTooLarge(len(media.content))
        return ReceivedFile(media.content, media.filename or None)

    @property
    def url(self) -> str:
        """The callback URL as bound (tests listen on port 0)."""
        host = self.settings.listen.rsplit(":", 1)[0]
        return f"http://{host}:{self.server.port}{self.settings.path}"

    @property
    def up(self) -> bool:
        return self.server.alive()

    async def start(self) -> None:
        await self.server.start()
        self.sender.start()
        resumed = await self.inbox.resume()
        if resumed:
            log.info("WeCom: handling callbacks of %d people received before the restart",
                     resumed)
        self.inbox.drain.start_sweeping()  # others' callbacks, a dead instance's, retries
        self._housekeeping = asyncio.create_task(self._tidy_forever())
        log.info("WeCom callback listening on %s", self.url)

    async def stop(self) -> None:
        """Stop taking callbacks first, then let the callbacks being handled and the
        messages being sent finish (at most TAIQU_SHUTDOWN_DRAIN_SECONDS): a send cut off
        in flight may have reached WeCom and would go again after the next start. What was
        recorded and not handled is handled after the next start, or by another instance at
        once: this one's claims are given up."""
        await self.server.stop()
        await self.inbox.drain.stop_sweeping()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await self._drain(self.services.settings.shutdown_drain_seconds)
        await self.inbox.drain.close()
        await self.sender.stop()
        await self.client.aclose()

    async def _drain(self, seconds: float) -> None:
        """Finish the work in hand: callbacks being handled and the sends they queued (not
        messages held for later by the budget or a back-off: they wait in the table)."""
        async def finish() -> None:
            await self.inbox.lanes.idle()
            await self.sender.lanes.idle()

        try:
            await asyncio.wait_for(finish(), seconds)
        except TimeoutError:
            log.warning("WeCom: stopped with work in hand after %.0f s; the next start "
                        "finishes it", seconds)

    async def idle(self) -> None:
        """Wait until everything recorded is handled and everything sendable is sent (the
        inbox table is read, not only the endpoint's notices, which may still be on their
        way from its process)."""
        while True:
            waiting = await self.store.inbox.waiting_people(self.services.clock.now())
            for external_id in waiting:
                self.inbox.poke(external_id)
            await self.inbox.lanes.idle()
            await self.sender.sweep()
            await self.sender.lanes.idle()
            if not (waiting or self.inbox.lanes.busy() or self.sender.lanes.busy()):
                return

    async def _tidy_forever(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(TIDY_SECONDS)
            rounds += 1
            try:
                if not self.server.alive():  # the endpoint process died: WeCom retries
                    log.error("the WeCom callback endpoint stopped; starting it again")
                    await self.server.stop()
                    await self.server.start()
                if rounds % PRUNE_EVERY == 0:
                    now = self.services.clock.now()
                    await self.store.prune(now, now.timestamp(), self.settings.keep_days)
            except Exception:
                log.exception("WeCom housekeeping failed")
