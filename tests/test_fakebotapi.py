"""Tests for the fake Bot API server, driven by real PTB applications."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.fakebotapi import (
    BOT_USERNAME,
    DEFAULT_TOKEN,
    FakeBotAPI,
    build_echo_app,
    run_polling,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(DEFAULT_TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


async def _raw(fake: FakeBotAPI, method: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{DEFAULT_TOKEN}/{method}", **kwargs) as resp,
    ):
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def test_echo_three_users_concurrently(fake: FakeBotAPI) -> None:
    app = build_echo_app(fake, DEFAULT_TOKEN)
    users = [101, 202, 303]
    async with run_polling(app, timeout=5):
        assert app.bot.username == BOT_USERNAME

        async def converse(chat_id: int) -> None:
            for i in range(3):
                text = f"用户{chat_id} 第{i}条"
                assert [m["text"] for m in await fake.reply_to(chat_id, text)] == [text]

        await asyncio.gather(*(converse(u) for u in users))

        # burst: all messages queued at once, interleaved between users
        for i in range(5):
            for u in users:
                fake.user_sends(u, f"burst {u} {i}")
        for u in users:
            msgs = await fake.wait_for(u, count=8, timeout=5)
            assert [m["text"] for m in msgs[3:]] == [f"burst {u} {i}" for i in range(5)]
            ids = [m["message_id"] for m in msgs]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            assert all(m["method"] == "sendMessage" for m in msgs)
    assert not fake.calls_to("sendMessage", ok=False)


async def test_inline_keyboard_press_round_trip(fake: FakeBotAPI) -> None:
    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = [[InlineKeyboardButton("查询台区", callback_data="q:1")]]
        keyboard.append([InlineKeyboardButton("取消", callback_data="cancel")])
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "请选择", reply_markup=InlineKeyboardMarkup(keyboard)
        )

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer("收到")
        await query.edit_message_text(f"你选择了 {query.data} (原消息: {query.message.text})")

    app = (
        ApplicationBuilder()
        .token(DEFAULT_TOKEN)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(on_press))
    async with run_polling(app, timeout=5):
        [msg] = await fake.reply_to(7, "/menu")
        assert msg["text"] == "请选择"
        assert msg["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "q:1"

        with pytest.raises(AssertionError, match="查询台区"):
            fake.press(7, "不存在的按钮")

        touched = await fake.press_and_wait(7, "查询")  # substring match
        assert [m["message_id"] for m in touched] == [msg["message_id"]]
        assert touched[0]["text"] == "你选择了 q:1 (原消息: 请选择)"
        assert touched[0]["reply_markup"] is None  # editMessageText without markup drops it
        [edit] = fake.edits(7)
        assert edit["method"] == "editMessageText" and edit["message_id"] == msg["message_id"]
        [answer] = fake.callback_answers
        assert answer["text"] == "收到" and answer["data"] == "q:1"
        assert len(fake.sent(7)) == 1


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_429_retried_by_aioratelimiter(fake: FakeBotAPI) -> None:
    app = build_echo_app(fake, DEFAULT_TOKEN, rate_limiter=AIORateLimiter(max_retries=3))
    fake.fail_next("sendMessage", "429", retry_after=1)
    async with run_polling(app, timeout=5):
        fake.user_sends(55, "重试我")
        [msg] = await fake.wait_for(55, count=1, timeout=5)
        assert msg["text"] == "重试我"
        await asyncio.sleep(0.2)
        assert len(fake.sent(55)) == 1
    assert [c.ok for c in fake.calls_to("sendMessage")] == [False, True]


async def test_message_length_and_empty_errors(fake: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(9, "长" * 4097)
    assert (await bot.send_message(9, "长" * 4096)).message_id == 1
    assert fake.calls_to("sendMessage") and not fake.calls_to("sendMessage")[0].ok

    status, body = await _raw(fake, "sendMessage", json={"chat_id": 9, "text": "x" * 4097})
    assert status == 400
    assert body == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    status, body = await _raw(fake, "sendMessage", data={"chat_id": "9", "text": ""})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    assert len(fake.sent(9)) == 1

    status, body = await _raw(fake, "noSuchMethod", json={})
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    assert fake.calls[-1].method == "noSuchMethod" and not fake.calls[-1].ok


async def test_send_document_multipart_and_get_file(fake: FakeBotAPI, bot: Bot) -> None:
    content = "台区,户数\nA01,120\n".encode()
    msg = await bot.send_document(12, content, filename="report.csv", caption="日报")
    [rec] = fake.sent(12)
    assert rec["method"] == "sendDocument" and rec["caption"] == "日报"
    assert rec["document"]["content"] == content
    assert rec["document"]["file_name"] == "report.csv"
    assert msg.document is not None and msg.document.file_name == "report.csv"

    tg_file = await bot.get_file(msg.document.file_id)
    assert bytes(await tg_file.download_as_bytearray()) == content

    photo = await bot.send_photo(12, b"\x89PNG fake", caption="现场")
    assert fake.sent(12)[-1]["photo"]["content"] == b"\x89PNG fake"
    assert photo.photo[-1].file_id == fake.sent(12)[-1]["photo"]["file_id"]


async def test_faults_blocked_and_commands(fake: FakeBotAPI, bot: Bot) -> None:
    fake.fail_next("sendMessage", "502")
    with pytest.raises(NetworkError):
        await bot.send_message(1, "a")
    fake.fail_next("sendMessage", 403)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(1, "b")
    fake.blocked_chats.add(2)
    with pytest.raises(Forbidden):
        await bot.send_message(2, "c")
    assert not fake.sent(1) and not fake.sent(2)

    fake.fail_ratio("sendMessage", 0.5, kinds=("502",), seed=1)
    outcomes = []
    for i in range(20):
        try:
            await bot.send_message(3, f"m{i}")
            outcomes.append(True)
        except NetworkError:
            outcomes.append(False)
    fake.fail_ratio("sendMessage", 0)
    assert 0 < outcomes.count(True) < 20 and len(fake.sent(3)) == outcomes.count(True)

    await bot.set_my_commands([("start", "开始"), ("help", "帮助")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    await bot.delete_my_commands()
    assert fake.my_commands() == []


async def test_long_poll_wakes_on_update_and_on_stop() -> None:
    fake = FakeBotAPI()
    await fake.start()
    loop = asyncio.get_running_loop()
    poll = asyncio.create_task(_raw(fake, "getUpdates", json={"timeout": 30}))
    await asyncio.sleep(0.05)
    started = loop.time()
    update_id = fake.user_sends(5, "/start now")
    status, body = await poll
    assert status == 200
    assert loop.time() - started < 0.5
    [update] = body["result"]
    assert update["update_id"] == update_id
    assert update["message"]["entities"][0] == {"type": "bot_command", "offset": 0, "length": 6}

    _, body = await _raw(fake, "getUpdates", json={"offset": update_id + 1, "timeout": 0})
    assert body == {"ok": True, "result": []}

    pending = asyncio.create_task(_raw(fake, "getUpdates", json={"timeout": 30}))
    await asyncio.sleep(0.05)
    started = loop.time()
    await fake.stop()
    assert (await pending)[1]["result"] == []
    assert loop.time() - started < 1.5


async def test_user_media_updates_and_reply_keyboard(fake: FakeBotAPI, bot: Bot) -> None:
    fake.user_sends_photo(8, "p1", caption="表计照片", content=b"jpeg-bytes")
    fake.user_sends_location(8, 31.23, 121.47)
    fake.user_sends_document(8, b"data", "a.txt")
    photo_upd, loc_upd, doc_upd = await bot.get_updates(timeout=0)
    assert photo_upd.message is not None and photo_upd.message.caption == "表计照片"
    tg_file = await bot.get_file(photo_upd.message.photo[-1].file_id)
    assert bytes(await tg_file.download_as_bytearray()) == b"jpeg-bytes"
    assert loc_upd.message is not None and loc_upd.message.location is not None
    assert loc_upd.message.location.latitude == 31.23
    assert doc_upd.message is not None and doc_upd.message.document is not None
    assert doc_upd.message.document.file_name == "a.txt"
    assert [u.message.message_id for u in (photo_upd, loc_upd, doc_upd) if u.message] == [1, 2, 3]

    await bot.send_message(8, "确认?", reply_markup=ReplyKeyboardMarkup([["是", "否"]]))
    assert fake.sent(8)[0]["message_id"] == 4
    update_id = fake.press(8, "否")
    [upd] = await bot.get_updates(offset=update_id, timeout=0)
    assert upd.message is not None and upd.message.text == "否"
