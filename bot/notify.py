"""Pushing a message to a user on whichever channel knows them (reminders, escalations)."""

from __future__ import annotations

from typing import Protocol

from bot.events import Reply
from bot.services import Services


class DeliveryError(Exception):
    pass


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
    def __init__(self, services: Services, notifiers: list[Notifier]) -> None:
        self.services = services
        self.notifiers = {n.channel: n for n in notifiers}

    async def push(self, user_id: int, reply: Reply) -> None:
        for channel, external_id in await self.services.people.identities_of(user_id):
            notifier = self.notifiers.get(channel)
            if notifier is not None:
                await notifier.push(external_id, reply)
                return
        raise Unreachable(f"user {user_id} has no channel that can receive pushes")
