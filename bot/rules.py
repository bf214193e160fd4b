"""Rule tables and vocabularies kept as data in data/."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from functools import cache

from bot.config import DATA_DIR


@dataclass(frozen=True)
class WorkItem:
    key: str
    synonyms: tuple[str, ...]


@cache
def work_items() -> tuple[WorkItem, ...]:
    with (DATA_DIR / "work_items.json").open(encoding="utf-8") as fh:
        raw = json.load(fh)["items"]
    return tuple(WorkItem(r["key"], tuple(r["synonyms"])) for r in raw)


def work_item_keys() -> tuple[str, ...]:
    return tuple(i.key for i in work_items())


@cache
def _synonym_index() -> list[tuple[str, str]]:
    """(word, key), longest word first so 客户服务 wins over 服务."""
    pairs = [(s.lower(), i.key) for i in work_items() for s in i.synonyms]
    return sorted(pairs, key=lambda p: -len(p[0]))


def work_item_words() -> list[tuple[str, str]]:
    """(word, key) for every word that names a work item: ('巡视', 'patrol'), ('巡检', 'patrol')."""
    return list(_synonym_index())


@cache
def _synonyms_by_first() -> dict[str, tuple[tuple[str, str], ...]]:
    """_synonym_index by first character (longest first within each): a word can only start
    a text that starts with its first character, so only those are tried."""
    by_first: dict[str, list[tuple[str, str]]] = {}
    for word, key in _synonym_index():
        by_first.setdefault(word[:1], []).append((word, key))
    return {first: tuple(pairs) for first, pairs in by_first.items()}


def leading_work_items(text: str) -> tuple[list[str], str]:
    """Work-item words at the start of `text`.

    '巡视 走访 3号台区' -> (['patrol', 'visit'], '3号台区')
    """
    found: list[str] = []
    rest = text.lstrip()
    # Read on every typed step (issue #12): lowered once a word, and only the words with the
    # text's first character tried (was: all of them, lowering the text for each: ~40 us).
    by_first = _synonyms_by_first()
    while True:
        low = rest.lower()
        for word, key in by_first.get(low[:1], ()):
            if low.startswith(word):
                if key not in found:
                    found.append(key)
                rest = rest[len(word):].lstrip(" 、,，和+/")
                break
        else:
            return found, rest


def work_items_in(text: str) -> list[str]:
    """Every work item named anywhere in `text`, in the paper form's order."""
    low = text.lower()
    hits = {key for word, key in _synonym_index() if word in low}
    return [k for k in work_item_keys() if k in hits]


@cache
def default_hours() -> dict[str, time]:
    """Part of the day -> the hour a work log takes when only the part is named (下午 -> 15:00)."""
    with (DATA_DIR / "day_parts.json").open(encoding="utf-8") as fh:
        raw: dict[str, str] = json.load(fh)["default_hours"]
    return {part: time.fromisoformat(hhmm) for part, hhmm in raw.items()}


@cache
def bulk_avoid_minutes() -> dict[str, frozenset[int]]:
    """Channel -> minutes of the hour bulk pushes stay out of (WeCom: :00 and :30)."""
    with (DATA_DIR / "send_pacing.json").open(encoding="utf-8") as fh:
        raw: dict[str, list[int]] = json.load(fh)["avoid_minutes"]
    return {channel: frozenset(minutes) for channel, minutes in raw.items()}


@dataclass(frozen=True)
class Category:
    key: str
    sensitive: bool
    synonyms: tuple[str, ...]


@cache
def _customer_rules() -> dict[str, list[dict[str, object]]]:
    with (DATA_DIR / "customer_categories.json").open(encoding="utf-8") as fh:
        data: dict[str, list[dict[str, object]]] = json.load(fh)
    return data


@cache
def categories() -> tuple[Category, ...]:
    return tuple(Category(str(c["key"]), bool(c["sensitive"]),
                          tuple(c["synonyms"]))  # type: ignore[arg-type]
                 for c in _customer_rules()["categories"])


def sensitive_categories() -> frozenset[str]:
    return frozenset(c.key for c in categories() if c.sensitive)


def categories_in(text: str) -> list[str]:
    """Category keys named in `text` (医疗 -> medical), in the rule table's order."""
    low = text.lower()
    return [c.key for c in categories()
            if any(s.lower() in low for s in c.synonyms) or c.key == low]


def category_query(text: str, labels: Mapping[str, str] | None = None) -> list[str]:
    """Category keys when `text` is only category words, separators and search fillers:
    '低保户' -> [low_income], '独居老人、残疾人' -> [elderly, disabled]. [] when anything else
    is left, so '王老人' stays a name search. `labels`: shown labels -> key, also accepted.

    Scanned by hand, longest word first: the words are a small data table and a match must
    consume the whole text, which a substring test (categories_in) cannot say.
    """
    words = [(w.lower(), c.key) for c in categories() for w in (c.key, *c.synonyms)]
    words += [(w.lower(), k) for w, k in (labels or {}).items() if w]
    words.sort(key=lambda p: -len(p[0]))
    fillers = sorted((str(f).lower() for f in _customer_rules().get("search_fillers", [])),
                     key=len, reverse=True)
    s, i, found = text.lower(), 0, []
    while i < len(s):
        if s[i] in _QUERY_SEPARATORS:
            i += 1
            continue
        hit = next(((w, k) for w, k in words if s.startswith(w, i)), None)
        if hit is not None:
            found += [hit[1]] if hit[1] not in found else []
            i += len(hit[0])
            continue
        filler = next((f for f in fillers if s.startswith(f, i)), None)
        if filler is None:
            return []
        i += len(filler)
    return found


_QUERY_SEPARATORS = frozenset(" 、,，/／;；+和及或与")


@cache
def measures() -> tuple[WorkItem, ...]:
    """Service measures (停电优先告知, 代缴) as key + synonyms."""
    return tuple(WorkItem(str(m["key"]), tuple(m["synonyms"]))  # type: ignore[arg-type]
                 for m in _customer_rules()["measures"])
