"""Free text that starts something: `记录巡视 3号台区`, `巡视 3号台区 昨天下午3点 …`, `我的日志`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from bot.rules import leading_work_items
from bot.textutil import normalize_input
from bot.timeparse import ParsedTime, find_time, leading_time
from bot.vocab import take_area

# Words that announce a work-log entry even without a work item: 记录 / 写日志 / 工作日志.
_LOG_LEAD = re.compile(r"^(记录一下|记一下|记录日志|写日志|填日志|工作日志|记录|日志)\s*")
_LEADING_AREA = re.compile(r"^[^\s，,。、]*?台区")
# Said before the work itself: 今天「去」3号台区巡视了, 「我」昨天「又」走访了 5号台区.
_FILLER = re.compile(r"^(?:我们|我|又|也|再|已经|已|刚|去了|去|到|在|对)+\s*")
# Between an area named first and the work: 3号台区「进行了」巡视.
_CONNECTOR = re.compile(r"^(?:进行了|进行|开展了|开展|做了|做)\s*")
# Aspect particles right after a work-item word are grammar, not content (走访了5号台区…),
# but not the first character of 了解 / 过程 / 完成 and the like, which are.
_PARTICLE = re.compile(
    r"^(?:完毕|完了|过了|了(?![解结])|过(?![程去来户])|完(?![成善整备全工]))?"
    r"(?:一下|一遍|一趟|一圈)?[\s,，。;；、]*")

_SIMPLE = {
    "logs": re.compile(r"^(我的日志|日志列表|查日志|查看日志|my logs)$", re.I),
    "help": re.compile(r"^(帮助|help|怎么用|\?|？)$", re.I),
    "greet": re.compile(r"^(你好|您好|hi|hello|菜单|menu|开始)$", re.I),
}


@dataclass
class WorkLogIntent:
    items: list[str] = field(default_factory=list)
    area_text: str | None = None
    time: ParsedTime | None = None
    content: str | None = None
    lead: bool = False  # said 记录 / 写日志 …: a log is asked for even without a work item


def simple_intent(text: str) -> str | None:
    clean = normalize_input(text)
    for name, pattern in _SIMPLE.items():
        if pattern.match(clean):
            return name
    return None


def reads_as_request(pattern: re.Pattern[str], text: str) -> bool:
    """Inside a form, `pattern` (a reader: group 1 the lead word, group 2 any rest) reads the
    whole message as a request only when the lead stands alone or is set apart by a space:
    `查客户 李四` asks for a search, `查客户家电表箱` is prose answering the step."""
    s = normalize_input(text)
    m = pattern.match(s)
    if m is None:
        return False
    rest = m.group(2) if pattern.groups >= 2 else ""  # a reader of fixed words has no rest
    return not rest or s[m.end(1):m.end(1) + 1].isspace()


def is_log_request(intent: WorkLogIntent | None) -> bool:
    """A log sentence that is all request (`记录巡视 5号台区`), with no work described in it:
    `巡视了5号台区，发现表箱锈蚀` answers a step instead."""
    return (intent is not None and intent.content is None
            and (intent.lead or intent.area_text is not None))


def _preamble(s: str, now: datetime) -> tuple[ParsedTime | None, str]:
    """A leading time and filler words ('今天去…', '我昨天下午3点又…'): (time, the rest)."""
    when = None
    while True:
        before = s
        if when is None and (found := leading_time(s, now, prefer="past")) is not None:
            when = found
            s = s[s.index(found.phrase) + len(found.phrase):].lstrip()
        s = _FILLER.sub("", s, count=1)
        if s == before:
            return when, s


def _work_items(s: str) -> tuple[list[str], str]:
    """Work-item words at the start, each maybe followed by 了/过/完 ('巡视了、走访了…')."""
    found: list[str] = []
    while True:
        items, rest = leading_work_items(s)
        if not items:
            return found, s
        found += [k for k in items if k not in found]
        s = _PARTICLE.sub("", rest, count=1).lstrip(" 、,，和")


def _area_then_items(s: str, area_names: list[str]) -> tuple[str, list[str], str] | None:
    """'3号台区巡视了…': the area named before the work. (area, items, rest) or None."""
    for name in sorted(area_names, key=len, reverse=True):
        if name and s.startswith(name):
            area = name
            break
    else:
        m = _LEADING_AREA.match(s)
        if m is None:
            return None
        area = m.group(0)
    items, rest = _work_items(_CONNECTOR.sub("", s[len(area):].lstrip(), count=1))
    return (area, items, rest) if items else None


def worklog_intent(text: str, now: datetime, area_names: list[str]) -> WorkLogIntent | None:
    """Read what a work-log request already says; None when the text is not one."""
    s = normalize_input(text)
    lead = _LOG_LEAD.match(s)
    if lead:
        s = s[lead.end():]
    when, s = _preamble(s, now)
    items, s = _work_items(s)
    area_text = None
    if not items and (first := _area_then_items(s, area_names)) is not None:
        area_text, items, s = first
    if not lead and not items:
        return None
    intent = WorkLogIntent(items=items, area_text=area_text, time=when, lead=lead is not None)
    if area_text is None:
        intent.area_text, s = take_area(s, area_names)
    if when is None and (when := find_time(s, now, prefer="past")) is not None:
        intent.time = when
        s = s.replace(when.phrase, " ", 1)
    # '巡视3号台区了，发现…': the particle came after the area; what follows is the content.
    rest = _PARTICLE.sub("", " ".join(s.split()), count=1)
    rest = rest.removeprefix("的").lstrip("，,、;；。 ")  # '走访5号台区的王大爷'
    intent.content = rest or None
    return intent
