"""What channels hand the core and what the core hands back: no platform types here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.textutil import clean_text

CALLBACK_SEP = "|"
GLOBAL_TOKEN = "-"  # buttons that belong to no form (menus, lists)


@dataclass(frozen=True)
class Button:
    label: str
    # Short: a channel takes only so many bytes (ChannelCaps.max_button_data, checked when
    # an outcome is shaped for it). Keep core callbacks within the smallest channel's.
    data: str


@dataclass(frozen=True)
class Attachment:
    """A file the core produced (a report's XLSX, a chart's PNG), sent after the text."""

    filename: str
    data: bytes
    kind: str = "document"  # "document" or "photo"


@dataclass
class Reply:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)  # "channel:file_ref", sent after the text
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class Incoming:
    channel: str
    external_id: str
    display_name: str = ""
    text: str | None = None
    callback: str | None = None
    photo: str | None = None  # the platform's file reference
    # A file sent as a document (XLSX, CSV ...): the platform's reference, fetched through
    # the receiving channel's FileSource (bot.channel) only when a reader may want it.
    document: str | None = None
    filename: str | None = None  # as the sender's device named it, if the platform says
    location: tuple[float, float] | None = None
    language: str | None = None  # the platform's language hint for new users
    other: str | None = None  # any other content (sticker, voice ...): its kind
    edited: bool = False  # the user edited a message already sent: its content is not used


@dataclass
class Outcome:
    replies: list[Reply] = field(default_factory=list)
    toast: str | None = None  # short answer to a button press
    edit: Reply | None = None  # replaces the message whose button was pressed
    commands_changed: bool = False  # the user's language changed: re-register menus

    def add(self, text: str, buttons: list[list[Button]] | None = None) -> Outcome:
        self.replies.append(Reply(text, buttons or []))
        return self


def callback(token: str, action: str, arg: str | int = "") -> str:
    return f"{token}{CALLBACK_SEP}{action}{CALLBACK_SEP}{arg}"


def parse_callback(data: str) -> tuple[str, str, str] | None:
    parts = data.split(CALLBACK_SEP, 2)
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def pager(ctx_t: Callable[[str], str], action: str, offset: int, page: int,
          total: int, token: str = GLOBAL_TOKEN) -> list[Button]:
    """◀️ / ▶️ buttons for a paged list (empty when it fits on one page): a menu's list, or
    (with the form's token) a form step's long list of choices."""
    nav = []
    if offset > 0:
        nav.append(Button(ctx_t("btn.prev_page"), callback(token, action,
                                                           max(0, offset - page))))
    if offset + page < total:
        nav.append(Button(ctx_t("btn.next_page"), callback(token, action, offset + page)))
    return nav


def cleaned(ev: Incoming) -> Incoming:
    """Typed text and profile names without control or bidi characters, whatever the
    channel: everything stored, shown in a report or put in a file name comes from here.
    Line breaks stay in typed text (log content); a display name is one line."""
    text = clean_text(ev.text) if ev.text else ev.text
    name = " ".join(clean_text(ev.display_name, multiline=False).split())
    filename = clean_text(ev.filename, multiline=False) if ev.filename else ev.filename
    if text == ev.text and name == ev.display_name and filename == ev.filename:
        return ev
    return replace(ev, text=text, display_name=name, filename=filename)


def command_of(text: str) -> tuple[str | None, str]:
    """'/start@taiqu_bot CODE' -> ('start', 'CODE'); plain text -> (None, '')."""
    clean = text.strip()
    if not clean.startswith("/") or len(clean) < 2:
        return None, ""
    head, _, rest = clean[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name or not name.replace("_", "").isalnum():
        return None, ""
    return name, rest.strip()
