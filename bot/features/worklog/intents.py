"""Free text that starts something: `记录巡视 3号台区`, `巡视 3号台区 昨天下午3点 …`, `我的日志`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from weakref import WeakKeyDictionary

from bot.rules import leading_work_items, work_item_words
from bot.textutil import after_keyword, normalize_input
from bot.timeparse import ParsedTime, find_time, leading_time
from bot.vocab import (  # noqa: F401  (simple_intent: re-exported)
    AreaNames,
    area_names,
    simple_intent,
    take_area,
)

# Words that announce a work-log entry even without a work item: 记录 / 写日志 / 工作日志.
_LOG_LEAD = re.compile(r"^(记录一下|记一下|记录日志|写日志|填日志|工作日志|记录|日志)\s*")
# The work named first, then 记录 (抢修记录 3号台区 …): a log of that work, like 记录抢修.
_LOG_AFTER_ITEM = re.compile(r"^记录(?!仪)[\s:：,，、]*")
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

# Nothing wrong found: then problems, photos and location are offered, not asked one by one.
# Checked before the problem markers, so 未发现异常 is not read as a problem.
_ALL_CLEAR = re.compile(
    r"(?:无|没有?|未)(?:发现|见)?(?:任何)?(?:异常|问题|隐患|缺陷)|(?<![不非])正常|一切良好|情况良好")
# What was found: '发现2号杆拉线松动', '发现了…'; or a clause naming a hazard ('表箱有漏电隐患').
_FOUND = re.compile(r"(?:发现了?|发觉|查出)[\s,，:：]*(?P<what>.+)")
_HAZARD = re.compile(r"(?P<what>[^，,。;；]*有[^，,。;；]*隐患.*)")
_CLAUSE_END = "，,。;；、 "

# More than one 台区: '3号台区和5号台区', '3号、5号台区' (said as '3号台区、5号台区' first).
_AREA_JOIN = re.compile(r"\s*[和与及跟、,，]\s*")
_NUMBERED_AREA = re.compile(r"^\d+号台区")
_SHARED_SUFFIX = re.compile(
    r"(\d+)号?\s*([、,，和与及])\s*(?=\d+号?\s*(?:[、,，和与及]\s*\d+号?\s*)*台区)")
# The fuller entry's fields, said with their names: 处理结果：…, 工单号 …, 户号 ….
_RESULT = re.compile(r"[\s，,。;；]*处理结果[\s:：是为]*(?P<v>[^。;；]+)[。;；]?")
_TICKET = re.compile(
    r"[\s，,。;；]*(?:关联)?工单(?:号|编号)?[\s:：为是]*(?P<v>[A-Za-z0-9][A-Za-z0-9-]{3,})")
_ACCOUNT = re.compile(r"[\s，,。;；]*户号[\s:：为是]*(?P<v>\d{4,})")



@dataclass
class WorkLogIntent:
    items: list[str] = field(default_factory=list)
    area_text: str | None = None
    time: ParsedTime | None = None
    content: str | None = None
    problems: str | None = None  # what the sentence says was found wrong
    all_clear: bool = False  # it says nothing was wrong: 无异常 / 正常 / 没问题
    lead: bool = False  # said 记录 / 写日志 …: a log is asked for even without a work item
    more_area_texts: list[str] = field(default_factory=list)  # 台区 after the first
    result: str | None = None  # 处理结果：…
    ticket: str | None = None  # 工单号 …
    account: str | None = None  # 户号 … of the customer concerned


def is_log_request(intent: WorkLogIntent | None) -> bool:
    """A log sentence that is all request (`记录巡视 5号台区`), with no work described in it:
    `巡视了5号台区，发现表箱锈蚀` answers a step instead."""
    return (intent is not None and intent.content is None
            and (intent.lead or intent.area_text is not None))


def names_work_then_log(text: str) -> bool:
    """`抢修记录 3号台区 …`: a work item, then 记录 - the work log's, whatever else the item's
    word starts (报修 / 抢修 also start a repair)."""
    items, rest = leading_work_items(normalize_input(text))
    return bool(items) and _LOG_AFTER_ITEM.match(rest) is not None


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


def _area_at_start(s: str, names: AreaNames, pattern: re.Pattern[str]) -> str | None:
    """The team's area `s` starts with (longest name first), else one shaped by `pattern`."""
    name = names.at_start(s)
    if name is not None:
        return name
    m = pattern.match(s)
    return m.group(0) if m else None


def _more_areas(s: str, end: int, names: AreaNames, found: list[str]) -> int:
    """Areas joined on after the one ending at `end` ('…和5号台区'): added to `found`;
    returns where the last one ends."""
    while (m := _AREA_JOIN.match(s, end)) is not None and (
            area := _area_at_start(s[m.end():], names, _NUMBERED_AREA)) is not None:
        if area not in found:
            found.append(area)
        end = m.end() + len(area)
    return end


def _take_areas(s: str, names: AreaNames) -> tuple[list[str], str]:
    """Every area the sentence names together ('3号台区和5号台区'), and the rest of it."""
    first, _ = take_area(s, names)
    if first is None:
        return [], s
    start = s.find(first)
    found = [first]
    end = _more_areas(s, start + len(first), names, found)
    return found, s[:start] + " " + s[end:]


def _area_then_items(s: str, names: AreaNames) -> tuple[list[str], list[str], str] | None:
    """'3号台区巡视了…': the areas named before the work. (areas, items, rest) or None."""
    area = _area_at_start(s, names, _LEADING_AREA)
    if area is None:
        return None
    areas = [area]
    end = _more_areas(s, len(area), names, areas)
    items, rest = _work_items(_CONNECTOR.sub("", s[end:].lstrip(), count=1))
    return (areas, items, rest) if items else None


def _take_field(pattern: re.Pattern[str], s: str) -> tuple[str | None, str]:
    """A field said with its name ('处理结果：已紧固'): its value, and the sentence without it."""
    m = pattern.search(s)
    if m is None:
        return None, s
    return m.group("v").strip(_CLAUSE_END) or None, (s[:m.start()] + " " + s[m.end():]).strip()


def _split_problems(rest: str) -> tuple[str, str | None]:
    """'巡视了，发现2号杆拉线松动' -> ('巡视了', '2号杆拉线松动'): the work and what was found."""
    if _ALL_CLEAR.search(rest):
        return rest, None
    m = _FOUND.search(rest) or _HAZARD.search(rest)
    if m is None:
        return rest, None
    return rest[:m.start()].rstrip(_CLAUSE_END), m.group("what").strip(_CLAUSE_END) or None


def _one_wrong_character(typed: str, word: str) -> bool:
    """Same length, exactly one character different, and that one no digit (4号 is no typo
    of 3号). Pinyin input mistypes by picking a homophone (台曲, 巡式): a substitution, which
    this says exactly, where a similarity ratio would need a threshold per word length."""
    diff = [(a, b) for a, b in zip(typed, word, strict=True) if a != b]
    return len(diff) == 1 and not (diff[0][0].isdigit() or diff[0][1].isdigit())


_GAP = "\0"  # no word has it: stands for the one character that may differ


class _Typos:
    """The words worth correcting, indexed by each word with one character left out, so that
    the words one character away from a piece of the sentence are looked up, not compared
    one by one (a team's thousands of 台区: issue #12)."""

    def __init__(self, words: list[tuple[str, str]]) -> None:
        self.lengths = sorted({len(w) for w, _ in words})
        self._gapped: dict[str, list[tuple[int, str, str]]] = {}  # -> (rank, word, meaning)
        for rank, (word, meaning) in enumerate(words):
            for j in range(len(word)):
                self._gapped.setdefault(word[:j] + _GAP + word[j + 1:], []).append(
                    (rank, word, meaning))

    def near(self, piece: str) -> list[tuple[int, str, str]]:
        """The words `piece` is a typo of (_one_wrong_character)."""
        return [hit for j in range(len(piece))
                for hit in self._gapped.get(piece[:j] + _GAP + piece[j + 1:], ())
                if _one_wrong_character(piece, hit[1])]

    def fixed(self, s: str) -> str | None:
        """`s` with each word typed with one wrong character put right, when the words close
        to it at that place all mean one thing (巡式: 巡视, 巡检, 巡查 are all a patrol); None
        when there is nothing unambiguous to fix."""
        fixes: dict[int, dict[str, str]] = {}  # place -> meaning -> a word for it
        for i in range(len(s)):
            for _, word, meaning in sorted(hit for n in self.lengths if i + n <= len(s)
                                           for hit in self.near(s[i:i + n])):
                fixes.setdefault(i, {}).setdefault(meaning, word)
        fixed, changed = s, False
        for i, found in sorted(fixes.items(), reverse=True):  # from the end: indices stay valid
            if len(found) == 1:
                word = next(iter(found.values()))
                fixed, changed = fixed[:i] + word + fixed[i + len(word):], True
        return fixed if changed else None


# Built once per team list (AreaNames lives as long as the team's list is current).
_TYPOS: WeakKeyDictionary[AreaNames, _Typos] = WeakKeyDictionary()


def _typos(names: AreaNames) -> _Typos:
    """Words worth correcting, with what they mean: the team's areas, the Chinese work words."""
    typos = _TYPOS.get(names)
    if typos is None:
        words = [(w, w) for w in names.names if len(w) >= 3]
        words += [(w, k) for w, k in work_item_words() if len(w) >= 2 and not w.isascii()]
        typos = _TYPOS[names] = _Typos(words)
    return typos


def worklog_intent(text: str, now: datetime, names: Iterable[str] | AreaNames, *,
                   fix_typos: bool = True) -> WorkLogIntent | None:
    """Read what a work-log request already says; None when the text is not one. A sentence
    that reads as none is read once more with a mistyped area or work word put right
    ('3号台曲巡视', '巡式3号台区') unless `fix_typos` is off. `names`: the team's 台区
    (Ctx.team_area_names: indexed once for the team)."""
    index = area_names(names)
    found = _read_worklog(text, now, index)
    if found is None and fix_typos and (
            fixed := _typos(index).fixed(normalize_input(text))) is not None:
        guess = _read_worklog(fixed, now, index)
        # A guess must read as work at a place: '服装店' is no 服务 log.
        found = guess if guess is not None and guess.area_text else None
    return found


def _read_worklog(text: str, now: datetime, names: AreaNames) -> WorkLogIntent | None:
    s = normalize_input(text)
    lead = _LOG_LEAD.match(s)
    if lead:
        s = after_keyword(s[lead.end():])
    s = _SHARED_SUFFIX.sub(r"\1号台区\2", s)
    when, s = _preamble(s, now)
    items, s = _work_items(s)
    announced = lead is not None
    if items and (after := _LOG_AFTER_ITEM.match(s)) is not None:
        s, announced = s[after.end():], True
    areas: list[str] = []
    if not items and (first := _area_then_items(s, names)) is not None:
        areas, items, s = first
    if not lead and not items:
        return None
    intent = WorkLogIntent(items=items, time=when, lead=announced)
    intent.ticket, s = _take_field(_TICKET, s)
    intent.account, s = _take_field(_ACCOUNT, s)
    intent.result, s = _take_field(_RESULT, s)  # last: it runs to the end of its clause
    if not areas:
        areas, s = _take_areas(s, names)
    if areas:
        intent.area_text, intent.more_area_texts = areas[0], areas[1:]
    # A time right after the area ('巡视 3号台区 上午 发现…'): a part of the day alone counts
    # there, where inside the sentence it is too often just a word.
    if when is None and (when := leading_time(s.strip(), now, prefer="past")) is not None:
        intent.time = when
        s = s.strip()[len(when.phrase):]
    if when is None and (when := find_time(s, now, prefer="past")) is not None:
        intent.time = when
        s = s.replace(when.phrase, " ", 1)
    # '巡视3号台区了，发现…': the particle came after the area; what follows is the content.
    rest = _PARTICLE.sub("", " ".join(s.split()), count=1)
    rest = rest.removeprefix("的").lstrip("，,、;；。 ")  # '走访5号台区的王大爷'
    intent.all_clear = bool(_ALL_CLEAR.search(rest))
    intent.content, intent.problems = _split_problems(rest)
    intent.content = intent.content or None
    return intent
