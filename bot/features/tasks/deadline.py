"""A task's deadline from Chinese time phrases: `明天下班前`, `周五下午3点前`, `12月3日`.
A date alone, or 下班前, means the end of that working day (the rule set's working hours)."""

from __future__ import annotations

import re
from datetime import date, datetime

from bot.records.common import ruleset
from bot.services import Ctx
from bot.timeparse import find_time

# What may follow the time phrase and belongs to it: 明天「下班前」, 3点「前」.
_TAIL = re.compile(r"^\s*(下班(?:之?前|以前)?|之前|以前|前)")
_END_OF_DAY = re.compile(r"下班(?:之?前|以前)?")


def end_of_working_day(ctx: Ctx, day: date) -> datetime:
    end = ruleset(ctx.services).working_hours.end
    return datetime.combine(day, end, tzinfo=ctx.tz)


def read_deadline(ctx: Ctx, text: str) -> tuple[datetime, str] | None:
    """(the deadline, the phrase as written) for the first time phrase in `text`."""
    found = find_time(text, ctx.local_now, prefer="future")
    if found is not None:
        start = text.find(found.phrase)
        tail = _TAIL.match(text[start + len(found.phrase):]) if start >= 0 else None
        phrase = found.phrase + (tail.group(0) if tail else "")
        at = found.value if found.has_time else end_of_working_day(ctx, found.value.date())
        return at, phrase
    alone = _END_OF_DAY.search(text)  # '下班前' alone: today
    if alone is not None:
        return end_of_working_day(ctx, ctx.local_now.date()), alone.group(0)
    return None
