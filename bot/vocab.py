"""Words of the trade read out of a free sentence, defined once: which 台区 a sentence names."""

from __future__ import annotations

import re
from collections.abc import Iterable

AREA_TOKEN = re.compile(r"\S*?台区")  # anything shaped like an area: '3号台区', '城东3号台区'
BARE_AREA_NUMBER = re.compile(r"^(\d+号)(?=\s|$)")  # '3号 …' at the start means 3号台区


def take_area(text: str, names: Iterable[str]) -> tuple[str | None, str]:
    """The area a sentence names, and the sentence without it. The team's own names come
    first, longest first ('城东3号台区' before '3号台区'); then anything shaped like one."""
    for name in sorted(names, key=len, reverse=True):
        if name and name in text:
            return name, text.replace(name, " ", 1)
    m = AREA_TOKEN.search(text) or BARE_AREA_NUMBER.search(text.strip())
    if m:
        return m.group(0), text.replace(m.group(0), " ", 1)
    return None, text
