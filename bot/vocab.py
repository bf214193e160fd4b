"""Words of the trade read out of a free sentence, defined once: which 台区 a sentence names,
and the one-word requests (我的日志, 帮助, 你好) the core and the work log both read."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.textutil import normalize_input

AREA_TOKEN = re.compile(r"\S*?台区")  # anything shaped like an area: '3号台区', '城东3号台区'
BARE_AREA_NUMBER = re.compile(r"^(\d+号)(?=\s|$)")  # '3号 …' at the start means 3号台区


class AreaNames:
    """A team's 台区 names, indexed once so that finding one in a sentence costs the
    sentence's length, not the team's size (a 供电所 of a province has thousands of 台区;
    issue #12: a chat step's CPU does not grow with the team). By hand: what is asked is
    "the longest of these names in this text, the first listed on a tie", which a dict of
    the names by length answers and no matching library states more plainly. Kept with the
    team's list (bot.storage.team_areas), so built once per change to the team's 台区."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self._rank: dict[str, int] = {}  # name -> where it is first listed (ties: first wins)
        for i, name in enumerate(self.names):
            if name:
                self._rank.setdefault(name, i)
        self.lengths = sorted({len(n) for n in self._rank}, reverse=True)

    def at_start(self, s: str) -> str | None:
        """The longest name `s` starts with."""
        for n in self.lengths:
            if len(s) >= n and s[:n] in self._rank:
                return s[:n]
        return None

    def first_in(self, text: str) -> str | None:
        """The longest name found anywhere in `text` ('城东3号台区' before '3号台区'); of
        names as long, the one listed first."""
        for n in self.lengths:
            found = [(self._rank[w], w) for i in range(len(text) - n + 1)
                     if (w := text[i:i + n]) in self._rank]
            if found:
                return min(found)[1]
        return None


def area_names(names: Iterable[str] | AreaNames) -> AreaNames:
    return names if isinstance(names, AreaNames) else AreaNames(names)


def take_area(text: str, names: Iterable[str] | AreaNames) -> tuple[str | None, str]:
    """The area a sentence names, and the sentence without it. The team's own names come
    first, longest first ('城东3号台区' before '3号台区'); then anything shaped like one."""
    name = area_names(names).first_in(text)
    if name is not None:
        return name, text.replace(name, " ", 1)
    m = AREA_TOKEN.search(text) or BARE_AREA_NUMBER.search(text.strip())
    if m:
        return m.group(0), text.replace(m.group(0), " ", 1)
    return None, text


_SIMPLE = {
    "logs": re.compile(r"^(我的日志|日志列表|查日志|查看日志|my logs)$", re.I),
    "help": re.compile(r"^(帮助|help|怎么用|\?|？)$", re.I),
    "greet": re.compile(r"^(菜单|menu|开始)$", re.I),
    # Small talk gets a one-line answer (menu.small_talk.<name>), not the whole menu.
    "hello": re.compile(r"^(你好|您好|hi|hello|在吗|在不在)$", re.I),
    "thanks": re.compile(r"^(谢谢|多谢|感谢|谢了|谢谢你|辛苦了|thanks|thank you|thx)$", re.I),
    "ack": re.compile(r"^(好的|好|好滴|收到|知道了|明白|明白了|了解|嗯|嗯嗯|ok|okay|行|可以)$",
                      re.I),
}
SMALL_TALK = ("hello", "thanks", "ack")
# Said around small talk and meaning nothing more: '谢谢！', '好的~', '你好呀', '收到啦'.
_CHATTER_TAIL = re.compile(r"[啊呀啦哈哦喔吧嘛~～!！。.,，\s]+$")


def simple_intent(text: str) -> str | None:
    clean = _CHATTER_TAIL.sub("", normalize_input(text)) or normalize_input(text)
    for name, pattern in _SIMPLE.items():
        if pattern.match(clean):
            return name
    return None


def reads_as_any_request(patterns: Iterable[re.Pattern[str]], text: str) -> bool:
    """Inside a form, a pattern (a reader: group 1 the lead word, group 2 any rest) reads the
    whole message as a request only when the lead stands alone or is set apart by a space:
    `查客户 李四` asks for a search, `查客户家电表箱` is prose answering the step. Every answer
    typed in a form is read by each feature's pattern: the text is normalised once for all
    of them (issue #12: it was once each, 14 a step)."""
    s = normalize_input(text)
    for pattern in patterns:
        m = pattern.match(s)
        if m is None:
            continue
        rest = m.group(2) if pattern.groups >= 2 else ""  # a reader of fixed words has no rest
        if not rest or s[m.end(1):m.end(1) + 1].isspace():
            return True
    return False
