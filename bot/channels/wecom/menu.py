"""The app menu under the WeCom chat box (`taiqu-bot wecom menu`): click keys are
"cmd:<command>" and work like typing /<command> (bot.channels.wecom.inbox)."""

from __future__ import annotations

from typing import Any

from bot.channels.wecom.inbox import MENU_KEY_PREFIX
from bot.i18n import t

# (locale key of the label, command) — top level, then the sub-menu of the last entry.
# WeCom shows at most 3 top-level entries (4 Chinese characters) and 5 under each
# (7 characters); one app has one menu for everyone, so it is in the default language.
TOP = (("wecom.menu.log", "log"), ("wecom.menu.todo", "todo"))
MORE = (("wecom.menu.customers", "customers"), ("wecom.menu.report", "report"),
        ("wecom.menu.complaint", "complaint"), ("wecom.menu.repair", "repair"),
        ("wecom.menu.help", "help"))


def _click(locale: str, key: str, command: str) -> dict[str, Any]:
    return {"type": "click", "name": t(locale, key), "key": MENU_KEY_PREFIX + command}


def menu(locale: str) -> list[dict[str, Any]]:
    return [*(_click(locale, k, c) for k, c in TOP),
            {"name": t(locale, "wecom.menu.more"),
             "sub_button": [_click(locale, k, c) for k, c in MORE]}]
