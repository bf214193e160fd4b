"""Pushing a message to a user on whichever channel knows them (reminders, escalations)."""

from __future__ import annotations

from typing import Protocol

from bot.events import Reply
from bot.services import Services


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


class Notifier(Protocol):
    channel: str

    async def push(self, external_id: str, reply: Reply) -> None:
        """Send one message; raise RetryLater, OutcomeUnknown or Unreachable on failure."""
        ...


class Dispatcher:
    def __init__(self, services: Services, notifiers: list[Notifier], *,
                 others_later: bool = False) -> None:
        """`others_later`: a user reachable only on channels this process does not serve
        (a Telegram user, seen from the terminal chat) is RetryLater, not Unreachable: the
        process that serves the channel will deliver it."""
        self.services = services
        self.notifiers = {n.channel: n for n in notifiers}
        self.others_later = others_later

    async def push(self, user_id: int, reply: Reply) -> None:
        identities = await self.services.people.identities_of(user_id)
        for channel, external_id in identities:
            notifier = self.notifiers.get(channel)
            if notifier is not None:
                await notifier.push(external_id, reply)
                return
        if identities and self.others_later:
            raise RetryLater(OTHER_CHANNEL_RETRY_S, "channel not served by this process")
        raise Unreachable(f"user {user_id} has no channel that can receive pushes")
