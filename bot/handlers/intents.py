"""Free text that starts something: `记录巡视 3号台区`, `巡视 3号台区 昨天下午3点 …`, `我的日志`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from bot.rules import leading_work_items
from bot.textutil import normalize_input
from bot.timeparse import ParsedTime, find_time

# Words that announce a work-log entry even without a work item: 记录 / 写日志 / 工作日志.
_LOG_LEAD = re.compile(r"^(记录一下|记一下|记录日志|写日志|填日志|工作日志|记录|日志)\s*")
_AREA_TOKEN = re.compile(r"\S*?台区")
_BARE_AREA_NUMBER = re.compile(r"^(\d+号)(?=\s|$)")

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


def simple_intent(text: str) -> str | None:
    clean = normalize_input(text)
    for name, pattern in _SIMPLE.items():
        if pattern.match(clean):
            return name
    return None


def worklog_intent(text: str, now: datetime, area_names: list[str]) -> WorkLogIntent | None:
    """Read what a work-log request already says; None when the text is not one."""
    s = normalize_input(text)
    lead = _LOG_LEAD.match(s)
    if lead:
        s = s[lead.end():]
    items, s = leading_work_items(s)
    if not lead and not items:
        return None
    intent = WorkLogIntent(items=items)
    # Names the team really uses first (longest first), then anything shaped like an area.
    for name in sorted(area_names, key=len, reverse=True):
        if name and name in s:
            intent.area_text = name
            s = s.replace(name, " ", 1)
            break
    else:
        m = _AREA_TOKEN.search(s) or _BARE_AREA_NUMBER.search(s)
        if m:
            intent.area_text = m.group(0)
            s = s[:m.start()] + " " + s[m.end():]
    when = find_time(s, now)
    if when is not None:
        intent.time = when
        s = s.replace(when.phrase, " ", 1)
    rest = " ".join(s.split())
    intent.content = rest or None
    return intent
