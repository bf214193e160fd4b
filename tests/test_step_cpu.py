"""Work a chat step no longer does (issue #12: per-step CPU within 1.5x of a bare bot), each
pinned by what it sends or a count, never by a time (BENCHMARKS.md has the figures)."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import InlineKeyboardButton
from telegram.request._requestparameter import RequestParameter

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel, _keyboard, _markup
from bot.events import Button
from bot.services import Services
from tests.conftest import Chat, make_user
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, callback_data, labels, register

pytestmark = pytest.mark.timeout(60)

KEYBOARDS = (
    [[Button("上一步", "f|abc|back"), Button("跳过", "f|abc|skip")], [Button("取消", "f|x|c")]],
    [[Button('引号 " 与 \\ 反斜杠 🙂', "-|worklog.log|12")]],
)


@pytest.mark.parametrize("buttons", KEYBOARDS)
def test_a_keyboard_goes_out_as_the_bytes_ptb_would_send(buttons: list[list[Button]]) -> None:
    """The keyboard built as JSON is the very parameter PTB sends for InlineKeyboardMarkup."""
    ptb = RequestParameter.from_input("reply_markup", _markup(buttons)).json_value
    ours = RequestParameter.from_input("reply_markup", _keyboard(buttons)).json_value
    assert ours == ptb
    assert _keyboard([]) is None


async def test_a_reply_builds_no_ptb_keyboard_objects(
        channel: TelegramChannel, services: Services, fake_api: FakeBotAPI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A form step's reply (three buttons) makes no InlineKeyboardButton on its way out,
    and the user still gets them."""
    zhang = await register(fake_api, services, 42, "张三")
    made: list[Any] = []
    real_init = InlineKeyboardButton.__init__

    def counted(self: InlineKeyboardButton, *args: Any, **kwargs: Any) -> None:
        made.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(InlineKeyboardButton, "__init__", counted)
    msgs = await zhang.say("记录巡视 3号台区")
    assert L("form.worklog.time") in msgs[-1]["text"]
    assert labels(msgs[-1]) and all(callback_data(msgs[-1]))
    assert made == []


@pytest.mark.parametrize(("text", "items", "rest"), [
    ("巡视 走访 3号台区", ["patrol", "visit"], "3号台区"),
    ("客户服务 5号台区", ["service"], "5号台区"),  # the longest word first: not 服务 + 客户
    ("服务 客户", ["service"], "客户"),
    ("客服、巡视和宣传", ["service", "patrol", "publicity"], ""),
    ("Line Loss 3号台区", ["lineloss"], "3号台区"),
    ("PATROL visit", ["patrol", "visit"], ""),
    ("巡视巡视 3号", ["patrol"], "3号"),
    ("应急处置了", ["emergency"], "了"),
    ("应急 处置", ["emergency"], "处置"),
    ("  受托办理/代办+回访 李四", ["errand", "visit"], "李四"),
    ("现在", [], "现在"), ("", [], ""), ("İ巡视", [], "İ巡视"), ("巡", [], "巡")])
def test_work_items_at_the_start_read_as_before(text: str, items: list[str], rest: str) -> None:
    """Only the words starting with the text's first character are tried now (issue #12): the
    same items and rest as when every word was tried (these are what it gave)."""
    from bot.rules import leading_work_items

    assert leading_work_items(text) == (items, rest)


@pytest.mark.parametrize(("typed", "asked"), [
    ("登记投诉", True), ("我的待办", True), ("查客户 李四", True), ("查客户", True),
    ("查客户家电表箱", False), ("２号杆拉线松动", False), ("现在", False)])
async def test_inside_a_form_a_typed_request_is_asked_about_and_prose_is_the_answer(
        services: Services, typed: str, asked: bool) -> None:
    """Every feature's pattern reads the answer, normalised once for all (issue #12): a
    request standing alone (or its lead set apart by a space) asks first, prose answers."""
    await make_user(services, "张三")
    chat = Chat(Assistant(services), "test", "张三")
    await chat.say("记录巡视 3号台区")
    await chat.say("现在")  # now at 做了什么
    out = await chat.say(typed)
    switch = L("form.switch", text=typed, form="§").split("§")[0]
    assert out.replies[0].text.startswith(switch) is asked, out.replies[0].text


async def test_a_message_goes_out_as_the_form_aiohttp_made_of_its_fields(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The Bot API's fields are sent as the x-www-form-urlencoded body aiohttp built from the
    dict (same bytes, same headers), without the multipart writer it made first (a uuid4
    boundary drawn for nothing, ~35 us a request)."""
    import uuid

    from aiohttp import FormData, web
    from telegram.request import RequestData

    from tests.test_telegram_http import posts_to, started

    seen: list[tuple[bytes, str]] = []

    async def record(req: web.Request) -> web.Response:
        seen.append((await req.read(), req.headers["Content-Type"]))
        return web.json_response({"ok": True, "result": True})

    params = [RequestParameter.from_input("chat_id", 7),
              RequestParameter.from_input("text", "巡视 3号台区 & 100% = ok?"),
              RequestParameter.from_input("reply_markup", _keyboard(KEYBOARDS[1]))]
    drawn: list[int] = []
    real_uuid4 = uuid.uuid4
    monkeypatch.setattr(uuid, "uuid4", lambda: drawn.append(1) or real_uuid4())
    async with posts_to(record) as base, started() as request:
        await request.do_request(f"{base}/sendMessage", "POST", RequestData(params))
    assert drawn == []
    as_aiohttp = FormData(RequestData(params).json_parameters)()
    assert seen == [(as_aiohttp._value, "application/x-www-form-urlencoded")]


async def test_a_typed_answer_is_folded_once_a_step(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reader of a step's text (the engine, its typed controls, each feature's intent
    and request pattern) normalises it: the text is folded once, not once a reader (issue
    #12: 10-12 times a step)."""
    from bot import textutil

    class Counted(dict[int, int]):
        looked_up = 0

        def __getitem__(self, char: int) -> int:
            if char == ord("紧"):
                Counted.looked_up += 1
            return super().__getitem__(char)

    await make_user(services, "张三")
    chat = Chat(Assistant(services), "test", "张三")
    await chat.say("记录巡视 3号台区")
    await chat.say("现在")  # now at 做了什么
    monkeypatch.setattr(textutil, "_FOLD", Counted(textutil._FOLD))
    out = await chat.say("7号杆横担锈蚀，已紧固")  # a text no other test types (kept folds)
    assert L("form.worklog.problems") in out.replies[0].text
    assert Counted.looked_up == 1
