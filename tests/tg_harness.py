"""Helpers for the Telegram end-to-end tests: the real channel on the fake Bot API, users that
register with a real invite code, and small readers for what the bot sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.config import LOCALES_DIR, Settings
from bot.models import Role
from bot.services import Services
from tests.conftest import telegram_settings
from tests.fakebotapi import FakeBotAPI

Msg = dict[str, Any]
# How long the bot must stay quiet in a chat before its answer counts as complete. Every reply
# of one outcome goes out back to back (milliseconds apart on loopback), so this is ample.
IDLE = 0.08


@cache
def _catalog(locale: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for path in [LOCALES_DIR / f"{locale}.json", *sorted((LOCALES_DIR / locale).glob("*.json"))]:
        with path.open(encoding="utf-8") as fh:
            data.update(json.load(fh))
    return data


def L(key: str, locale: str = "zh_CN", **kwargs: Any) -> str:
    """The exact locale string the user should see (read from the JSON, not from bot.i18n)."""
    text = _catalog(locale)[key]
    return text.format(**kwargs) if kwargs else text


def body(msg: Msg) -> str:
    return str(msg.get("text") if msg.get("text") is not None else msg.get("caption") or "")


def texts(msgs: list[Msg]) -> str:
    """All message texts joined, for `in` checks."""
    return "\n".join(body(m) for m in msgs)


def labels(msg: Msg) -> list[str]:
    markup = msg.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard") or [] for b in row]


def callback_data(msg: Msg) -> list[str]:
    markup = msg.get("reply_markup") or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard") or [] for b in row]


def has_keyboard(msg: Msg) -> bool:
    return bool(labels(msg))


async def start_channel(services: Services, settings: Settings,
                        fake: FakeBotAPI) -> TelegramChannel:
    channel = TelegramChannel(Assistant(services), telegram_settings(settings, fake))
    await channel.start()
    return channel


@dataclass
class TgUser:
    """One Telegram user in a private chat with the bot (chat id == user id)."""

    fake: FakeBotAPI
    chat_id: int
    name: str
    greeting: list[Msg] = field(default_factory=list)

    # --- acting -------------------------------------------------------------------------
    async def _respond(self, trigger: Callable[[], int], *, include_edits: bool = False,
                       timeout: float = 10.0, idle: float = IDLE) -> list[Msg]:
        return await self.fake.bot()._respond(self.chat_id, trigger, include_edits=include_edits,
                                              timeout=timeout, idle=idle)

    async def say(self, text: str, **kw: Any) -> list[Msg]:
        """Send text; the bot's new messages once it has gone quiet."""
        kw.setdefault("idle", IDLE)
        return await self.fake.reply_to(self.chat_id, text, **kw)

    async def press(self, label: str, message: int | Msg | None = None) -> list[Msg]:
        """Press a button (latest message having it unless `message`); new + edited messages."""
        return await self.fake.press_and_wait(self.chat_id, label, message=message, idle=IDLE)

    async def tap(self, message_id: int, data: str) -> list[Msg]:
        """Send any callback data (even forged) as if pressed on bot message `message_id`."""
        return await self._respond(
            lambda: self.fake.user_presses(self.chat_id, message_id, data), include_edits=True)

    async def photo(self, file_id: str) -> list[Msg]:
        return await self._respond(lambda: self.fake.user_sends_photo(self.chat_id, file_id))

    async def location(self, lat: float, lon: float) -> list[Msg]:
        return await self._respond(lambda: self.fake.user_sends_location(self.chat_id, lat, lon))

    async def edit(self, message_id: int, text: str, *, later: int = 60) -> list[Msg]:
        """Edit a message this user sent (`later` seconds after sending it)."""
        return await self._respond(
            lambda: self.fake.bot().user_edits(self.chat_id, message_id, text, later=later),
            timeout=3)

    @property
    def my_last_message_id(self) -> int:
        return max(self.fake.bot().chat(self.chat_id).user_messages)

    async def send_file(self, content: bytes, file_name: str,
                        mime_type: str = "application/octet-stream") -> list[Msg]:
        return await self._respond(lambda: self.fake.user_sends_document(
            self.chat_id, content, file_name, mime_type))

    async def document(self) -> list[Msg]:
        return await self._respond(lambda: self.fake.user_sends_document(
            self.chat_id, b"%PDF-1.4", "report.pdf", "application/pdf"))

    async def sticker(self) -> list[Msg]:
        sticker = {"file_id": "stk1", "file_unique_id": "ustk1", "type": "regular",
                   "width": 512, "height": 512, "is_animated": False, "is_video": False,
                   "emoji": "👍"}
        bot = self.fake.bot()
        return await self._respond(lambda: bot._queue_user_message(
            self.chat_id, {"sticker": sticker}, None, None, None))

    # --- reading ------------------------------------------------------------------------
    @property
    def sent(self) -> list[Msg]:
        return self.fake.sent(self.chat_id)

    @property
    def last(self) -> Msg:
        return self.sent[-1]

    def answers(self) -> list[dict[str, Any]]:
        """answerCallbackQuery calls made in this chat."""
        return [a for a in self.fake.callback_answers if a["chat_id"] == self.chat_id]


async def register(fake: FakeBotAPI, services: Services, chat_id: int, name: str,
                   role: Role = Role.MANAGER, team: str = "城东供电所",
                   areas: tuple[str, ...] = ("3号台区", "5号台区")) -> TgUser:
    """`taiqu-bot invite`'s code path, then `/start CODE` over Telegram."""
    invite = await services.people.create_invite(
        role=role, team=team, areas=list(areas), name=name, now=services.clock.now(),
        ttl=timedelta(days=7))
    fake.bot().chat(chat_id).first_name = name
    user = TgUser(fake, chat_id, name)
    user.greeting = await user.say(f"/start {invite.code}")
    return user


async def worklog_rows(services: Services) -> list[dict[str, Any]]:
    """Every saved entry with its items, photos, area and author, straight from SQL."""
    rows = await services.db.fetchall(
        "SELECT w.*, a.name AS area_name, u.name AS user_name FROM worklogs w "
        "JOIN areas a ON a.id = w.area_id JOIN users u ON u.id = w.user_id ORDER BY w.id")
    out = []
    for r in rows:
        d = dict(r)
        items = await services.db.fetchall(
            "SELECT item FROM worklog_items WHERE worklog_id = ? ORDER BY item", (r["id"],))
        photos = await services.db.fetchall(
            "SELECT channel, file_ref FROM worklog_photos WHERE worklog_id = ? ORDER BY position",
            (r["id"],))
        d["items"] = sorted(i["item"] for i in items)
        d["photos"] = [f"{p['channel']}:{p['file_ref']}" for p in photos]
        out.append(d)
    return out


async def open_drafts(services: Services) -> int:
    row = await services.db.fetchone("SELECT count(*) FROM conversations")
    return int(row[0]) if row else 0
