"""Fitting the core's outcomes to what one channel can show (bot.channel.ChannelCaps).

Pure functions: the Assistant shapes every reply with them and bot.notify.Dispatcher every
push, so a handler never thinks about message sizes or how many buttons fit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, TypeVar

from bot.channel import ChannelCaps
from bot.events import Button, Incoming, Outcome, Reply
from bot.textutil import normalize_input

if TYPE_CHECKING:
    from bot.services import Services


@dataclass(frozen=True)
class Choice:
    """A numbered choice shown as text: typing its number or its label presses it."""

    label: str
    data: str


def text_size(text: str, unit: Literal["char", "byte"]) -> int:
    return len(text) if unit == "char" else len(text.encode("utf-8"))


def _fit(text: str, limit: int, unit: Literal["char", "byte"]) -> int:
    """How many leading characters of `text` fit in `limit` units."""
    if unit == "char":
        return min(len(text), limit)
    lo, hi = 0, min(len(text), limit)  # a character is at least one byte
    while lo < hi:  # binary search: a few encodes, not one per character
        mid = (lo + hi + 1) // 2
        if len(text[:mid].encode("utf-8")) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


_ZWJ = "\u200d"


def _joins(ch: str) -> bool:
    """`ch` belongs to the character before it (a combining accent, a variation selector,
    a skin tone, a zero-width joiner): cutting before it would break what the reader sees."""
    return (unicodedata.combining(ch) != 0 or ch == _ZWJ or "\ufe00" <= ch <= "\ufe0f"
            or "\U0001f3fb" <= ch <= "\U0001f3ff")


def _boundary(text: str, cut: int) -> int:
    """Move a cut back to where a new character starts (never to 0: then cut as asked)."""
    at = cut
    while 0 < at < len(text) and (_joins(text[at]) or text[at - 1] == _ZWJ):
        at -= 1
    return at if at > 0 else cut


def split_text(text: str, limit: int, unit: Literal["char", "byte"] = "char") -> list[str]:
    """Chunks of at most `limit` units, cut at a line break when one falls in the second half
    of the chunk, else at a character boundary; the text is never shortened."""
    if text_size(text, unit) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text
    while text_size(rest, unit) > limit:
        fit = _fit(rest, limit, unit)
        cut = rest.rfind("\n", 0, fit)
        if cut <= 0 or text_size(rest[:cut], unit) < limit // 2:  # no useful line break
            cut = _boundary(rest, fit)
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        chunks.append(rest)
    return chunks


def _flat(reply: Reply) -> list[Button]:
    return [b for row in reply.buttons for b in row]


def needs_numbering(outcome: Outcome, caps: ChannelCaps) -> bool:
    """Whether shaping will number choices (the caller then supplies a hint in the user's
    language)."""
    shown = ([outcome.edit] if outcome.edit else []) + outcome.replies
    return any(len(_flat(r)) > caps.max_buttons for r in shown)


def _numbered(reply: Reply, start: int, hint: str) -> tuple[Reply, list[Choice]]:
    choices = [Choice(b.label, b.data) for b in _flat(reply)]
    lines = [f"{start + i}. {c.label}" for i, c in enumerate(choices)]
    text = "\n\n".join(part for part in (reply.text, "\n".join(lines), hint) if part)
    return replace(reply, text=text, buttons=[]), choices


def _check_data(reply: Reply, caps: ChannelCaps) -> None:
    for b in _flat(reply):
        if len(b.data.encode("utf-8")) > caps.max_button_data:
            raise ValueError(f"button data over {caps.max_button_data} bytes: {b.data!r}")


def _split(reply: Reply, caps: ChannelCaps) -> list[Reply]:
    """Buttons, photos and files stay with the last chunk: they follow what they belong to."""
    chunks = split_text(reply.text, caps.max_text, caps.text_unit)
    if len(chunks) == 1:
        return [reply]
    return [Reply(c) for c in chunks[:-1]] + [replace(reply, text=chunks[-1])]


def shape(outcome: Outcome, caps: ChannelCaps, *,
          choose_hint: str = "") -> tuple[Outcome, list[Choice]]:
    """The outcome as `caps` can show it, and the choices that were numbered in its text
    (empty: none; the caller keeps them so a typed number or label can press them).

    - more buttons in a reply than `caps.max_buttons`: all of them become numbered lines in
      its text (`choose_hint` after them), none stays a button;
    - text over `caps.max_text`: several replies, cut at line breaks where possible;
    - an edit on a channel that cannot edit (or one too long for one message): new replies
      first; a toast on a channel without toasts: a short reply before everything.
    """
    edit = outcome.edit
    replies = list(outcome.replies)
    lead: list[Reply] = []
    if outcome.toast and not caps.toasts:
        lead.append(Reply(outcome.toast))
    if edit is not None and not caps.can_edit:
        replies.insert(0, edit)
        edit = None
    pending: list[Choice] = []

    def fit(reply: Reply) -> Reply:
        if len(_flat(reply)) > caps.max_buttons:
            reply, numbered = _numbered(reply, len(pending) + 1, choose_hint)
            pending.extend(numbered)
        _check_data(reply, caps)
        return reply

    if edit is not None:
        edit = fit(edit)
        if text_size(edit.text, caps.text_unit) > caps.max_text:
            replies.insert(0, edit)  # never cut it: send it whole, as new messages
            edit = None
    shaped: list[Reply] = list(lead)
    for reply in replies:
        shaped += _split(fit(reply), caps)
    return Outcome(replies=shaped, toast=outcome.toast if caps.toasts else None, edit=edit,
                   commands_changed=outcome.commands_changed), pending


# --- typed answers to numbered choices ---------------------------------------------------
# Emoji, ticks and arrows around a button label (「☐ 3号台区」, 「下一页 ▶️」)
_DECOR = re.compile(r"^[^\w\u4e00-\u9fff]+|[^\w\u4e00-\u9fff]+$")


@lru_cache(maxsize=4096)  # the same labels (locale words, 台区) are compared on every typed text
def label_key(label: str) -> str:
    """A label as people type it: no emoji or tick before or after it, full-width folded,
    any case."""
    return _DECOR.sub("", normalize_input(label)).strip().lower()


# Anything with a label a person may type back: a button, a numbered choice.
_Labelled = TypeVar("_Labelled", Button, "Choice")


def by_label(typed: str, options: Iterable[_Labelled]) -> _Labelled | None:
    """The first of `options` whose label `typed` is, as people type it (its emoji
    optional, any case); None for text with nothing to compare."""
    key = label_key(typed)
    return next((o for o in options if label_key(o.label) == key), None) if key else None


def resolve_choice(text: str, choices: list[Choice]) -> str | None:
    """The callback data a typed `7` or `7号台区` stands for, if it names one of `choices`."""
    typed = normalize_input(text).rstrip(".。、")
    if re.fullmatch(r"[0-9]{1,4}", typed):
        n = int(typed)
        return choices[n - 1].data if 1 <= n <= len(choices) else None
    choice = by_label(typed, choices)
    return choice.data if choice else None


# --- the numbered choices a channel without buttons shows, typed back -------------------
MAX_TYPED_CHOICE = 100  # characters: longer text is an answer, never a choice's label


async def typed_choice(services: Services, ev: Incoming) -> Incoming:
    """A typed `7` or label answering numbered choices becomes that button's press, as if
    the channel had shown buttons. Commands stay commands."""
    text = ev.text
    if (text is None or ev.callback is not None or ev.photo is not None
            or len(text) > MAX_TYPED_CHOICE or text.lstrip().startswith("/")):
        return ev
    pending = await services.pending.get(ev.channel, ev.external_id)
    data = resolve_choice(text, pending) if pending else None
    return replace(ev, text=None, callback=data) if data else ev


async def shaped(services: Services, ev: Incoming, out: Outcome, caps: ChannelCaps,
                 choose_hint: Callable[[], Awaitable[str]]) -> Outcome:
    """`out` shaped for the channel; the numbered choices it shows are remembered, replaced
    by every reply: a number typed later refers to what is on screen now. The hint under
    numbered choices is looked up only when there are some."""
    hint = await choose_hint() if needs_numbering(out, caps) else ""
    result, pending = shape(out, caps, choose_hint=hint)
    await services.pending.replace(ev.channel, ev.external_id, pending, services.clock.now())
    return result
