"""`taiqu-bot run`: every configured channel in one process, with one reminder scanner and
one Dispatcher holding each channel's notifier.

A channel joins by one entry in CHANNEL_FACTORIES: when it is configured, how to check its
own settings, and how to build it on the shared Assistant. Channel modules are imported only
when configured, so a Telegram-only deployment never loads WeCom's code and the other way
round.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.assistant import Assistant
from bot.channel import Channel
from bot.config import Settings, SettingsError
from bot.health import HealthServer
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.scheduler import ReminderScheduler
from bot.services import Services
from bot.storage.leases import SCAN, InstanceLease, instance_name

log = logging.getLogger(__name__)


def _no_check(settings: Settings) -> None:
    return None


@dataclass(frozen=True)
class ChannelFactory:
    name: str
    configured: Callable[[Settings], bool]
    build: Callable[[Assistant, Settings], Channel]
    # Run before anything opens: raises SettingsError (one line naming the setting) when the
    # channel's own settings are wrong, so a bad value stops the start with no side effect.
    check: Callable[[Settings], None] = _no_check


def _telegram_check(settings: Settings) -> None:
    if settings.telegram_webhook_url and not settings.telegram_webhook_secret:
        raise SettingsError("TAIQU_TELEGRAM_WEBHOOK_URL is set: set TAIQU_TELEGRAM_WEBHOOK_SECRET "
                            "too (16-256 of A-Z a-z 0-9 _ -) / 使用 webhook 时必须设置 "
                            "TAIQU_TELEGRAM_WEBHOOK_SECRET")


def _telegram(assistant: Assistant, settings: Settings) -> Channel:
    from bot.channels.telegram import TelegramChannel

    return TelegramChannel(assistant, settings)


WECOM_MODULE = "bot.channels.wecom.channel"


def _wecom_check(settings: Settings) -> None:
    # The WeCom channel is built on its own branch (issue #9 section 2); until it is merged
    # a configured WeCom says so in one line instead of starting without it.
    if importlib.util.find_spec(WECOM_MODULE) is None:
        raise SettingsError("TAIQU_WECOM_CORP_ID is set, but this version has no WeCom channel "
                            "yet / 已设置 TAIQU_WECOM_CORP_ID，但此版本还没有企业微信渠道")
    importlib.import_module("bot.channels.wecom.config").load_wecom_settings()


def _wecom(assistant: Assistant, settings: Settings) -> Channel:
    module = importlib.import_module(WECOM_MODULE)
    return module.WeComChannel(assistant, settings)


CHANNEL_FACTORIES: list[ChannelFactory] = [
    ChannelFactory("telegram", lambda s: s.telegram_token is not None, _telegram,
                   _telegram_check),
    ChannelFactory("wecom", lambda s: s.wecom_corp_id is not None, _wecom, _wecom_check),
]


def configured(settings: Settings) -> list[ChannelFactory]:
    """The channels to serve, their settings checked (SettingsError on a bad one)."""
    found = [f for f in CHANNEL_FACTORIES if f.configured(settings)]
    for factory in found:
        factory.check(settings)
    return found


class Runner:
    """The serving process: `await start()`, serve until told, `await stop()`."""

    def __init__(self, services: Services, factories: list[ChannelFactory]) -> None:
        self.services = services
        self.assistant = Assistant(services)
        self.channels: list[Channel] = [f.build(self.assistant, services.settings)
                                        for f in factories]
        for channel in self.channels:  # a channel may have registered itself: same caps
            self.assistant.register_channel(channel.name, channel.caps)
        self.dispatcher = Dispatcher.for_channels(services, self.channels)
        self.name = instance_name()
        self.reminders = ReminderScheduler(ReminderService(services, self.dispatcher),
                                           services.settings.scan_interval_seconds,
                                           self._scan_lease())
        self._started: list[Channel] = []
        self.health: HealthServer | None = None
        if services.settings.health_port is not None:
            self.health = HealthServer(services, self.channels, self.name,
                                       lambda: self.reminders.holds_lease)

    def _scan_lease(self) -> InstanceLease | None:
        """On a shared store the scan goes to one instance at a time; on SQLite the file
        lease (bot/lease.py) already makes this process the only one."""
        if self.services.db.dialect == "sqlite":
            return None
        return InstanceLease(self.services.db, SCAN, self.name,
                             self.services.settings.instance_lease_seconds)

    async def start(self) -> None:
        for channel in self.channels:  # if one fails to start, stop() stops those already up
            await channel.start()
            self._started.append(channel)
        self.reminders.start()
        if self.health is not None:
            await self.health.start()
        log.info("serving %s; Ctrl+C to stop", ", ".join(c.name for c in self.channels))

    async def stop(self) -> None:
        if self.health is not None:  # the load balancer sends no more chats here
            await self.health.stop()
        await self.reminders.stop()  # drains the pushes in flight while the channels are up
        while self._started:  # each channel stops even if another one's stop fails
            channel = self._started.pop()
            try:
                await channel.stop()
            except Exception:
                log.exception("stopping %s failed", channel.name)
