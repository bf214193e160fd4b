"""Pushing a message to a user on whichever channel knows them (reminders, escalations)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from bot.events import Outcome, Reply
from bot.i18n import t
from bot.services import Services
from bot.shaping import needs_numbering, shape

if TYPE_CHECKING:
    from bot.channel import Channel, ChannelCaps


class DeliveryError(Exception):
    pass


class RetryLater(DeliveryError):
    """Flood limit or a network fault: try again after `seconds`."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class Unreachable(DeliveryError):
    """The user blocked the bot, deleted the chat, or has no channel we can push to."""


class Notifier(Protocol):
    channel: str

    async def push(self, external_id: str, reply: Reply) -> None:
        """Send one message; raise RetryLater or Unreachable on failure."""
        ...


class Dispatcher:
    """Pushes to the identity the person used most recently, falling back to their other
    identities when that one is unreachable; each push shaped for its channel's caps."""

    def __init__(self, services: Services, notifiers: list[Notifier],
                 caps: Mapping[str, ChannelCaps] | None = None) -> None:
        self.services = services
        self.notifiers = {n.channel: n for n in notifiers}
        self.caps = dict(caps or {})

    @classmethod
    def for_channels(cls, services: Services, channels: Iterable[Channel]) -> Dispatcher:
        channels = list(channels)
        return cls(services, [c.notifier for c in channels], {c.name: c.caps for c in channels})

    async def push(self, user_id: int, reply: Reply) -> None:
        unreachable: list[str] = []
        for channel, external_id in await self.services.people.identities_of(user_id):
            notifier = self.notifiers.get(channel)
            if notifier is None:
                continue
            try:
                await self._push(notifier, external_id, reply)
                return
            except Unreachable as exc:  # blocked there: maybe the person's other channel
                unreachable.append(f"{channel}: {exc}")
        raise Unreachable(f"user {user_id}: " + ("; ".join(unreachable) or
                                                 "no channel that can receive pushes"))

    async def _push(self, notifier: Notifier, external_id: str, reply: Reply) -> None:
        caps = self.caps.get(notifier.channel)
        if caps is None:
            await notifier.push(external_id, reply)
            return
        outcome = Outcome(replies=[reply])
        hint = ""
        if needs_numbering(outcome, caps):
            user = await self.services.people.by_identity(notifier.channel, external_id)
            locale = (user.locale if user else None) or self.services.settings.locale
            hint = t(locale, "button.choose_hint")
        shaped, pending = shape(outcome, caps, choose_hint=hint)
        for part in shaped.replies:
            await notifier.push(external_id, part)
        if pending:  # the push is now the latest thing on screen with numbers to type
            await self.services.pending.replace(notifier.channel, external_id, pending,
                                                self.services.clock.now())
