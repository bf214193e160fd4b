"""Match typed text against a list of choices without ever guessing silently."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from bot.textutil import normalize_input


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass
class MatchResult:
    exact: Choice | None = None
    suggestions: list[Choice] = field(default_factory=list)
    typed: str = ""  # the text as matched (folded), to tell a part of a label from a guess

    @property
    def unambiguous(self) -> Choice | None:
        """The exact match, or the only suggestion the text is part of ('3号' -> 3号台区 when
        no other area has that number). A suggestion reached otherwise ('不是' holding 是,
        a near spelling) is only offered as a button, never taken."""
        if self.exact:
            return self.exact
        if len(self.suggestions) == 1 and self.typed in _key(self.suggestions[0].label):
            return self.suggestions[0]
        return None


def _key(text: str) -> str:
    return normalize_input(text).replace(" ", "").lower()


def _digits(text: str) -> str:
    return "".join(re.findall(r"\d+", text))


def match_choice(text: str, choices: list[Choice], limit: int = 3) -> MatchResult:
    """An exact label or value match, else 'did you mean' suggestions (`3号` -> `3号台区`)."""
    key = _key(text)
    if not key:
        return MatchResult()
    for c in choices:
        # Labels only: values are button data (database ids), never what people type.
        if key == _key(c.label):
            return MatchResult(exact=c)
    suggestions: list[Choice] = []
    # Containment either way: '3号' in '3号台区', '城东3号台区' holding '3号台区'.
    for c in choices:
        label = _key(c.label)
        if key in label or label in key:
            suggestions.append(c)
    digits = _digits(key)
    if digits:
        # A number decides: '3' or '3号' suggests 3号台区, and 9号台区 never suggests 5号台区.
        suggestions += [c for c in choices if _digits(c.label) == digits and c not in suggestions]
        suggestions = [c for c in suggestions if _digits(c.label) in ("", digits)]
    else:
        labels = {_key(c.label): c for c in choices}
        for close in difflib.get_close_matches(key, list(labels), n=limit, cutoff=0.6):
            if labels[close] not in suggestions:
                suggestions.append(labels[close])
    return MatchResult(suggestions=suggestions[:limit], typed=key)
