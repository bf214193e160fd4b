"""Reading a free reminder out of a sentence: what to be reminded of, when, and whether it
is urgent. '3天后提醒我回访李四', '下周一上午提醒我交线损分析', '提醒我 周五下午 交报表'."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.textutil import normalize_input
from bot.timeparse import ParsedTime, find_time, leading_time

# The words that make a sentence a reminder request, and what may stand before them.
_REMIND = re.compile(r"^(?P<pre>.{0,24}?)(?:请|记得)?(?:提醒一下我|提醒我一下|提醒我)(?P<post>.*)$",
                     re.S)
_URGENT = re.compile(r"紧急|加急|急事|urgent", re.I)
_TRIM = " \t，,。.：:、；;!！"
_LIST = ("我的提醒", "提醒列表", "查看提醒", "我的提醒事项", "my reminders")


@dataclass(frozen=True)
class Request:
    what: str  # '' when the sentence names nothing to do
    when: ParsedTime | None  # None when it names no time
    urgent: bool


def is_list_request(text: str) -> bool:
    return normalize_input(text).lower() in _LIST


def read_request(text: str, now: datetime) -> Request | None:
    """The reminder a sentence asks for, or None when it is not such a sentence."""
    m = _REMIND.match(normalize_input(text))
    if m is None:
        return None
    pre, post = m.group("pre"), m.group("post")
    urgent = bool(_URGENT.search(pre))
    pre = _URGENT.sub("", pre).strip(_TRIM)
    when, rest = _time_at_start(pre, now)
    if pre and when is None:
        return None  # '张三说要提醒我…': someone else's words, not a request to the assistant
    post = post.strip(_TRIM)
    if when is None:
        when, post = _time_in(post, now)
    what = " ".join(p for p in (rest, post) if p).strip(_TRIM)
    return Request(what, when, urgent)


def _time_at_start(text: str, now: datetime) -> tuple[ParsedTime | None, str]:
    p = leading_time(text, now, prefer="future") if text else None
    if p is None:
        return None, text
    return p, text[len(p.phrase):].strip(_TRIM)


def _time_in(text: str, now: datetime) -> tuple[ParsedTime | None, str]:
    """A time phrase at the start of the rest ('周五下午 交报表') or inside it ('交报表 周五')."""
    p, rest = _time_at_start(text, now)
    if p is not None:
        return p, rest
    p = find_time(text, now, prefer="future")
    if p is None:
        return None, text
    return p, text.replace(p.phrase, " ", 1).strip(_TRIM)
