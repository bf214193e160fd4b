"""Pushing a message to a user on whichever channel knows them (reminders, escalations)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from bot.events import Outcome, Reply
from bot.i18n import t
from bot.sendbudget import pushing
from bot.services import Services
from bot.shaping import needs_numbering, shape

if TYPE_CHECKING:
    from bot.channel import Channel, ChannelCaps


class DeliveryError(Exception):
    pass


OTHER_CHANNEL_RETRY_S = 300.0


class RetryLater(DeliveryError):
    """Flood limit or a network fault: try again after `seconds`."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class OutcomeUnknown(DeliveryError):
    """The request went out but its answer was lost (timeout, connection reset): the platform
    may have shown the message. Repeating it at once would double it whenever it did; the
    caller decides when (and whether) to try again."""


class Unreachable(DeliveryError):
    """The user blocked the bot, deleted the chat, or has no channel we can push to."""


class NotOpenedYet(DeliveryError):
    """The person has no chat identity yet (invited, never opened the bot): nothing to push
    to, and nothing wrong either. The push waits for their first visit."""


class Notifier(Protocol):
    channel: str

    async def push(self, external_id: str, reply: Reply) -> None:
        """Send one message; raise RetryLater, OutcomeUnknown or Unreachable on failure."""
        ...


class Dispatcher:
    """Pushes to the identity the person used most recently, falling back to their other
    identities when that one is unreachable; each push shaped for its channel's caps."""

    def __init__(self, services: Services, notifiers: list[Notifier],
                 caps: Mapping[str, ChannelCaps] | None = None, *,
                 others_later: bool = False) -> None:
        """`others_later`: a user reachable only on channels this process does not serve
        (a Telegram user, seen from the terminal chat) is RetryLater, not Unreachable: the
        process that serves the channel will deliver it."""
        self.services = services
        self.notifiers = {n.channel: n for n in notifiers}
        self.caps = dict(caps or {})
        self.others_later = others_later

    @classmethod
    def for_channels(cls, services: Services, channels: Iterable[Channel]) -> Dispatcher:
        channels = list(channels)
        return cls(services, [c.notifier for c in channels], {c.name: c.caps for c in channels})

    async def push(self, user_id: int, reply: Reply) -> None:
        """Send `reply` to the person; in the push lane of every channel's send budget, so
        replies to people waiting on their phones go first."""
        with pushing():
            await self._push_to_someone(user_id, reply)

    async def _push_to_someone(self, user_id: int, reply: Reply) -> None:
        unreachable: list[str] = []
        await self.services.db.settle()  # the identity used last may still be on its way
        identities = await self.services.people.identities_of(user_id)
        if not identities:
            raise NotOpenedYet(f"user {user_id}: has not opened the bot yet")
        for channel, external_id in identities:
            notifier = self.notifiers.get(channel)
            if notifier is None:
                continue
            try:
                await self._push(notifier, external_id, reply)
                return
            except Unreachable as exc:  # blocked there: maybe the person's other channel
                unreachable.append(f"{channel}: {exc}")
        if identities and not unreachable and self.others_later:
            raise RetryLater(OTHER_CHANNEL_RETRY_S, "channel not served by this process")
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
