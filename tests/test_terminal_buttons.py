"""The local chat reads a typed button label against what is on screen."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from bot.channels.terminal import TerminalChat
from bot.events import Button, Outcome, Reply


def _chat() -> TerminalChat:
    assistant: Any = SimpleNamespace(register_channel=lambda *a, **kw: None)
    user: Any = SimpleNamespace(id=1, name="张三")
    return TerminalChat(assistant, user, io.StringIO())


def test_a_label_typed_for_a_card_still_works_after_a_push_came_between() -> None:
    chat = _chat()
    chat.show(Outcome().add("👤 王秀英", [[Button("📞 显示电话", "-|cust.reveal|7")]]))
    # The morning digest arrives before the manager types the card's button.
    chat.show(Outcome([Reply("☀️ 早上好", [[Button("👤 走访 王秀英", "-|visit|7")]])]))
    event = chat.to_event("显示电话")
    assert event is not None and event.callback == "-|cust.reveal|7"
    # Numbers still mean the buttons of the latest message.
    event = chat.to_event("1")
    assert event is not None and event.callback == "-|visit|7"
