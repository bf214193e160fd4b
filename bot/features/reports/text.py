"""The report as one chat message. However large the team, it stays within SUMMARY_CHARS:
the headline and the lists are capped, the per-person table takes what room is left, and
whatever does not fit is named as "N more, see the Excel file"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from bot.features.reports.figures import Figures, PersonFigures, Tally
from bot.i18n import t
from bot.rules import work_item_keys
from bot.timeparse import format_time

# How much of a report is worth reading in a chat; the rest is in the Excel file. A reading
# budget, not a channel's limit: a channel with shorter messages (WeCom: 2048 bytes) gets
# the summary split by bot.shaping, never cut.
SUMMARY_CHARS = 4000
MAX_OVERDUE_LINES = 8
MAX_LIST_CHARS = 500  # each of the name lists (no entries, not patrolled)


class _Words:
    def __init__(self, locale: str) -> None:
        self.locale = locale

    def __call__(self, key: str, **kw: Any) -> str:
        return t(self.locale, key, **kw)


def money(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


def pct(w: _Words, tally: Tally) -> str:
    if tally.pct is None:
        return w("report.pct_none")
    return w("report.pct", pct=round(tally.pct * 100), on_time=tally.on_time, judged=tally.judged)


def period_line(w: _Words, fig: Figures) -> str:
    p = fig.period
    first = format_time(datetime.combine(p.first, time()), w.locale, has_time=False)
    last = format_time(datetime.combine(p.last, time()), w.locale, has_time=False)
    text = first if p.first == p.last else w("report.period", first=first, last=last)
    if fig.now < p.end:  # still running: say up to when
        local_now = fig.now.astimezone(p.tz)
        text += w("report.so_far", when=format_time(local_now, w.locale))
    return text


def span(w: _Words, delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return w("time.days_hours", days=days, hours=hours)
    if hours:
        return w("time.hours_minutes", hours=hours, minutes=mins)
    return w("time.minutes", minutes=max(mins, 1))


def capped(names: list[str], cap: int, more: Callable[[int], str], sep: str) -> str:
    """Names joined until `cap` characters, then 'and N more'."""
    out: list[str] = []
    used = 0
    for i, name in enumerate(names):
        if used + len(name) + len(sep) > cap and out:
            return sep.join(out) + more(len(names) - i)
        out.append(name)
        used += len(name) + len(sep)
    return sep.join(out)


def _items_full(w: _Words, p: PersonFigures) -> str:
    parts = [w("report.item_count", item=w(f"item.{k}"), n=p.items.get(k, 0))
             for k in work_item_keys() if p.items.get(k)]
    return w("report.sep").join(parts) if parts else w("report.none")


def _headline(w: _Words, fig: Figures) -> list[str]:
    tot = fig.total
    sc = fig.scope
    lines: list[str] = []
    if sc.team_wide:
        lines.append(w("report.title_team", team=sc.team_name))
    else:
        lines.append(w("report.title_person", name=sc.user_name or "", team=sc.team_name))
    lines.append(period_line(w, fig))
    if sc.team_wide:
        managers = sum(1 for p in fig.people if p.role == "manager")
        lines.append(w("report.head_team", managers=managers, entries=tot.entries,
                       visits=tot.special_visits))
        lines.append(w("report.items", items=_items_full(w, tot)))
    elif tot.entries:
        lines.append(w("report.head_person", entries=tot.entries, items=_items_full(w, tot)))
        lines.append(w("report.visits", visits=tot.special_visits))
    else:
        lines.append(w("report.no_entries_self"))
    lines.append(w("report.complaints", new=tot.complaints_new, closed=tot.complaints_closed,
                   overdue=tot.complaints_overdue, pct=pct(w, tot.complaint_deadlines)))
    lines.append(w("report.arrears", new=tot.arrears_new, new_money=money(tot.arrears_new_cents),
                   collected=tot.arrears_collected,
                   collected_money=money(tot.arrears_collected_cents),
                   outstanding=tot.arrears_outstanding,
                   outstanding_money=money(tot.arrears_outstanding_cents),
                   notices=tot.notices_served, restored=tot.restore.on_time,
                   restore_judged=tot.restore.judged))
    lines.append(w("report.outages", outages=tot.outages, pct=pct(w, tot.outage_notice),
                   told=tot.special_told, to_tell=tot.special_to_tell))
    if tot.repair_arrival.judged:
        lines.append(w("report.repairs", pct=pct(w, tot.repair_arrival)))
    lines.append(w("report.on_time", pct=pct(w, tot.on_time)))
    return lines


def person_line(w: _Words, p: PersonFigures, overdue_now: int) -> str:
    """One short line in words, zero parts left out (张三：日志4条（走访2 巡视2），…)."""
    def some(key: str, pairs: list[tuple[str, int]]) -> str | None:
        shown = [w(f"report.p.{k}", n=n) for k, n in pairs if n]
        return w(f"report.p.{key}", parts=" ".join(shown)) if shown else None

    items = " ".join(w("report.p.item", item=w(f"item.{k}"), n=p.items[k])
                     for k in work_item_keys() if p.items.get(k))
    parts = [
        w("report.p.entries", n=p.entries, items=items) if p.entries else None,
        w("report.p.visits", n=p.special_visits) if p.special_visits else None,
        some("complaints", [("c_new", p.complaints_new), ("c_closed", p.complaints_closed)]),
        some("arrears", [("a_new", p.arrears_new), ("a_collected", p.arrears_collected),
                         ("a_outstanding", p.arrears_outstanding)]),
        None if p.on_time.pct is None else w("report.p.pct", pct=round(p.on_time.pct * 100)),
        w("report.p.overdue", n=overdue_now) if overdue_now else None]
    said = w("report.p.sep").join(x for x in parts if x) or w("report.p.nothing")
    return w("report.p.line", name=p.name, parts=said)


def _overdue(w: _Words, fig: Figures) -> list[str]:
    if not fig.overdue:
        return [w("report.overdue_none")]
    lines = [w("report.overdue_title", n=len(fig.overdue))]
    for o in fig.overdue[:MAX_OVERDUE_LINES]:
        lines.append(w("report.overdue_item", what=w(f"report.kind.{o.kind}", id=o.record_id),
                       step=w(f"report.step.{o.step}"), owner=o.owner,
                       late=w("time.overdue", span=span(w, fig.now - o.due))))
    if len(fig.overdue) > MAX_OVERDUE_LINES:
        lines.append(w("report.more_in_file", n=len(fig.overdue) - MAX_OVERDUE_LINES))
    return lines


def _unpatrolled(w: _Words, fig: Figures) -> list[str]:
    if not fig.unpatrolled:
        return [w("report.patrolled_all")]
    names = [w("report.area_owner", area=a.name,
               owners=w("report.list_sep").join(a.owners) if a.owners else w("report.no_owner"))
             if fig.scope.team_wide else a.name for a in fig.unpatrolled]
    more = (lambda n: w("report.and_more", n=n))  # noqa: E731
    return [w("report.unpatrolled", n=len(names),
              areas=capped(names, MAX_LIST_CHARS, more, w("report.list_sep")))]


def render(fig: Figures, locale: str, *, files: bool = True, files_on_tap: bool = False,
           limit: int = SUMMARY_CHARS) -> str:
    """`files`: the XLSX comes with the message; `files_on_tap`: behind a button instead."""
    w = _Words(locale)
    head = _headline(w, fig)
    tail: list[str] = []
    if fig.scope.team_wide:
        silent = [p.name for p in fig.silent]
        if silent:
            more = (lambda n: w("report.and_more", n=n))  # noqa: E731
            tail.append(w("report.silent", n=len(silent),
                          names=capped(silent, MAX_LIST_CHARS, more, w("report.list_sep"))))
        else:
            tail.append(w("report.silent_none"))
    tail += _overdue(w, fig)
    tail += _unpatrolled(w, fig)
    for part in fig.parts:  # the features' own sections, already in the reader's language
        tail += part.lines
    if files:
        tail.append(w("report.files_hint"))
    elif files_on_tap:
        tail.append(w("report.files_on_tap"))
    table: list[str] = []
    if fig.scope.team_wide and fig.people:
        table = [w("report.table_head")]
        room = limit - len("\n".join(head)) - len("\n".join(tail)) - 4  # blank-line joins
        room -= len(table[0]) + 1 + len(w("report.people_more", n=len(fig.people))) + 1
        shown = 0
        for p in fig.people:
            line = person_line(w, p, fig.overdue_of(p.user_id))
            if len(line) + 1 > room:
                break
            table.append(line)
            room -= len(line) + 1
            shown += 1
        if shown < len(fig.people):
            table.append(w("report.people_more", n=len(fig.people) - shown))
    blocks = ["\n".join(head)] + (["\n".join(table)] if table else []) + ["\n".join(tail)]
    text = "\n\n".join(blocks)
    if len(text) > limit:  # only if a single name is absurdly long: cut, never fail
        text = text[: limit - 1] + "…"
    return text


def team_summary(fig: Figures, locale: str) -> str:
    """For a team's WeCom group robot, which everyone in the group reads: the headline
    figures and one line per staff member, nothing naming a customer or a record (no
    overdue list, no areas)."""
    w = _Words(locale)
    lines = _headline(w, fig)
    if fig.people:
        lines += ["", w("report.table_head"),
                  *(person_line(w, p, fig.overdue_of(p.user_id)) for p in fig.people)]
    return "\n".join(lines)
