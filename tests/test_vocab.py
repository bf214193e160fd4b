"""The shared reading of which 台区 a sentence names (work log, repair and outage openers)."""

from __future__ import annotations

import pytest

from bot.vocab import take_area


@pytest.mark.parametrize(("text", "area", "rest"), [
    ("城东3号台区 变压器冒烟", "城东3号台区", "  变压器冒烟"),  # the longest own name wins
    ("3号台区 变压器冒烟", "3号台区", "  变压器冒烟"),
    ("9号台区 拉线松动", "9号台区", "  拉线松动"),  # shaped like an area, not one of ours
    (" 5号 表箱门坏了", "5号", "   表箱门坏了"),  # a bare number at the start
    ("表箱门坏了", None, "表箱门坏了"),
])
def test_take_area(text: str, area: str | None, rest: str) -> None:
    assert take_area(text, ["3号台区", "城东3号台区"]) == (area, rest)
