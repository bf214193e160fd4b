"""A core Outcome (already shaped for WeCom's caps by the core) as WeCom messages.

Every message counts against a member's 30 a minute, so consecutive texts of one outcome
are merged into one message while they fit in 2048 bytes, and a short question rides in its
button card's title instead of a text of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.channels.wecom.api import MAX_CARD_BUTTONS, MAX_TEXT_BYTES, split_text
from bot.channels.wecom.store import OutItem
from bot.events import Button, Outcome, Reply

log = logging.getLogger(__name__)
CHANNEL = "wecom"
# What a button_interaction card shows without cutting (developer doc 90236 suggests at most
# 26 characters of title and 112 of sub_title_text).
CARD_TITLE_CHARS = 26
CARD_SUB_CHARS = 112
_JOIN = "\n\n"


def _size(text: str) -> int:
    return len(text.encode())


class _Builder:
    def __init__(self, card_title: str) -> None:
        self.items: list[OutItem] = []
        self.card_title = card_title
        self._text: str | None = None  # texts waiting to be merged into one message

    def text(self, chunk: str) -> None:
        if not chunk.strip():
            return
        if self._text is not None and _size(self._text + _JOIN + chunk) <= MAX_TEXT_BYTES:
            self._text += _JOIN + chunk
            return
        self.flush()
        self._text = chunk

    def flush(self) -> None:
        if self._text is not None:
            self.items.append(OutItem("text", {"content": self._text}))
            self._text = None

    def card(self, question: str, buttons: list[Button]) -> None:
        """The reply's last text chunk and its buttons. A short question becomes the card's
        title (and sub-title): one message instead of two."""
        title, sub = self.card_title, ""
        first, _, rest = question.strip().partition("\n")
        if question.strip() and len(first) <= CARD_TITLE_CHARS and len(rest) <= CARD_SUB_CHARS:
            title, sub = first, rest.strip()
        else:
            self.text(question)
        self.flush()
        unique: list[Button] = []
        for btn in buttons:  # keys must be unique within a card
            if all(btn.data != u.data for u in unique):
                unique.append(btn)
        # The core numbers what does not fit (ChannelCaps.max_buttons); if a reply still
        # brings more, several cards keep every button pressable rather than dropping any.
        if len(unique) > MAX_CARD_BUTTONS:
            log.warning("a reply with %d buttons reached the WeCom channel unshaped",
                        len(unique))
        for i in range(0, len(unique), MAX_CARD_BUTTONS):
            part = unique[i:i + MAX_CARD_BUTTONS]
            self.items.append(OutItem("card", {
                "title": title if i == 0 else self.card_title, "sub": sub if i == 0 else "",
                "buttons": [[b.data, b.label] for b in part]}))


def render(out: Outcome, card_title: str, toast_text: Callable[[str], str] | None = None
           ) -> list[OutItem]:
    """The messages for `out`, in order. `card_title` titles a card whose question is too
    long to be its title (the question goes out as text just before it)."""
    b = _Builder(card_title)
    replies: list[Reply] = []
    # The core turns toasts and edits into replies for a channel without them; anything left
    # here is shown the same way rather than lost.
    if out.toast:
        replies.append(Reply(toast_text(out.toast) if toast_text else out.toast))
    if out.edit is not None:
        replies.append(out.edit)
    replies += out.replies
    for reply in replies:
        add_reply(b, reply)
    b.flush()
    return b.items


def render_reply(reply: Reply, card_title: str) -> list[OutItem]:
    b = _Builder(card_title)
    add_reply(b, reply)
    b.flush()
    return b.items


def add_reply(b: _Builder, reply: Reply) -> None:
    chunks = split_text(reply.text) if reply.text else []
    if len(chunks) > 1:  # the core shapes to 2048 bytes: a longer text here is a core bug
        log.warning("a %d-byte text reached the WeCom channel unshaped; split it",
                    _size(reply.text))
    buttons = [btn for row in reply.buttons for btn in row]
    if buttons:
        for chunk in chunks[:-1]:
            b.text(chunk)
        b.card(chunks[-1] if chunks else "", buttons)
    else:
        for chunk in chunks:
            b.text(chunk)
    if reply.photos or reply.attachments:
        b.flush()
    for ref in reply.photos:
        channel, _, ident = ref.partition(":")
        if channel == CHANNEL and ident.isdigit():
            b.items.append(OutItem("image", {"media": int(ident)}))
        else:  # a photo sent on another channel: its bytes are not ours to fetch
            log.info("photo %s from another channel not shown on WeCom", channel)
    for att in reply.attachments:
        kind = "image" if att.kind == "photo" else "file"
        b.items.append(OutItem(kind, {"filename": att.filename}, att.data))
