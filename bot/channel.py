"""The channel contract: what a chat platform declares it can do, and what the core expects
of it. Core: imports nothing from bot.channels (the channels import this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # bot.notify needs ChannelCaps at run time: no cycle
    from bot.notify import Notifier


@dataclass(frozen=True)
class ChannelCaps:
    max_text: int  # the most text in one message, in `text_unit`s
    text_unit: Literal["char", "byte"]  # "byte" = UTF-8 bytes (WeCom 2048), "char" (Telegram)
    max_buttons: int  # buttons in one message; more -> the choices are numbered in the text
    max_button_data: int  # bytes of one button's data
    can_edit: bool  # a sent message can be edited in place; if not, an edit is a new reply
    toasts: bool  # short answers to a button press; if not, the toast is a short reply
    menus_per_language: bool  # command menus can differ per language

    def __post_init__(self) -> None:
        # A limit below these leaves no room for a word or a choice: a typo, not a platform.
        if self.max_text < 16 or self.max_buttons < 1 or self.max_button_data < 1:
            raise ValueError(f"implausible channel caps: {self}")


class Channel(Protocol):
    """One chat platform served by `taiqu-bot run`."""

    name: str  # "telegram", "wecom", "terminal": the identities.channel value
    caps: ChannelCaps
    notifier: Notifier  # pushes (reminders, digests) to this platform

    @property
    def up(self) -> bool: ...  # started and still receiving (for /healthz)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ReceivedFile:
    """A file a user sent, downloaded from the channel that received it."""

    data: bytes
    filename: str | None = None  # the channel's name for it when the event had none (WeCom)


class FileTooLarge(Exception):
    """The file is over the size cap (TAIQU_UPLOAD_MAX_MB or the platform's own)."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"file too large ({size} bytes)" if size else "file too large")
        self.size = size


class FileUnavailable(Exception):
    """The channel could not hand the file over (expired reference, network): send again."""


class FileSource(Protocol):
    """How the core gets the bytes of a file a user sent (`Incoming.document`) from the
    channel that received it: registered with Assistant.register_channel(files=...)."""

    async def fetch_file(self, ref: str, max_bytes: int) -> ReceivedFile:
        """The file's bytes; FileTooLarge above `max_bytes` (checked before downloading
        where the platform tells the size), FileUnavailable when it cannot be had."""
        ...
