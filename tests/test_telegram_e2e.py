"""End to end over Telegram: the real PTB Application (long polling) of bot/channels/telegram.py
against the loopback fake Bot API, on a real SQLite file and a fake clock.

Every test talks to the bot as a user would (text, button presses, photos, locations) and
checks the exact texts and buttons the user sees and what ended up in the database."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from telegram.error import TelegramError

from bot.channels.telegram import ScreenedUpdates, TelegramChannel, redacted
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Incoming
from bot.handlers.menu import COMMANDS, command_descriptions
from bot.models import Role
from bot.services import Services
from bot.storage.dead_updates import DeadUpdates
from bot.storage.worklogs import NewWorkLog
from tests.conftest import SHANGHAI, make_user
from tests.fakebotapi import FakeBotAPI
from tests.test_help_lists import MANAGER
from tests.tg_harness import (
    L,
    TgUser,
    body,
    callback_data,
    has_keyboard,
    labels,
    open_drafts,
    register,
    start_channel,
    texts,
    worklog_rows,
)

pytestmark = pytest.mark.timeout(60)

NOW_SHOWN = "2026-11-27 周五 10:30"  # T0 as the bot echoes it
# The work log's optional fields, offered as ➕ on its summary (issue #13 §5).
EXTRAS_OFFERED = ["➕ 其他台区", "➕ 处理结果", "➕ 涉及客户", "➕ 关联工单号"]
YESTERDAY_3PM = "2026-11-26 周四 15:00"
# The manager's commands, one line each (issue #15 §4.2 changed the one-line list).
# The order is pinned once, in test_help_lists (features' commands before the core's tail).
CMD_LIST = "\n".join(f"/{c} {L(f'cmd.{c}')}" for c in MANAGER)


@pytest.fixture
async def zhang(channel: TelegramChannel, services: Services, fake_api: FakeBotAPI) -> TgUser:
    return await register(fake_api, services, 42, "张三")


def summary_of(msgs: list[dict]) -> str:
    found = [body(m) for m in msgs if L("form.summary_title", title="工作日志") in body(m)]
    assert found, f"no summary in {texts(msgs)!r}"
    return found[-1]


async def to_summary_with_prefill(user: TgUser, content: str = "巡视低压线路") -> str:
    """`巡视 3号台区 昨天下午3点 <content>` then skip problems, photos, location."""
    await user.say(f"巡视 3号台区 昨天下午3点 {content}")
    await user.press("跳过")
    await user.press("跳过")
    return summary_of(await user.press("跳过"))


# --- 1. invites ---------------------------------------------------------------------------
async def test_invite_greets_by_name_role_and_areas_and_registers_menus(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    greeting = texts(zhang.greeting)
    assert L("menu.welcome", name="张三") in greeting
    assert L("menu.role.manager", team="城东供电所", areas="3号台区、5号台区") in greeting
    # A manager's welcome offers the log and the to-do list (issue #15 §4.2 added 全部待办).
    assert labels(zhang.greeting[-1]) == ["📝 记录日志", "📋 我的日志", "📋 全部待办", "❓ 帮助"]

    zh = fake_api.my_commands(None, "zh")
    en = fake_api.my_commands(None, "en")
    assert {"log", "logs", "cancel", "help", "lang"} <= set(COMMANDS)
    assert [c["command"] for c in zh][:len(COMMANDS)] == list(COMMANDS)
    assert zh == [{"command": c, "description": d} for c, d in command_descriptions("zh_CN")]
    assert en == [{"command": c, "description": d} for c, d in command_descriptions("en")]
    assert all(c["description"] == L(f"cmd.{c['command']}") for c in zh)
    assert fake_api.my_commands() == zh  # the default menu is the configured locale's

    # The chat identity is bound to the invited user, by Telegram user id.
    user = await services.people.by_identity("telegram", "42")
    assert user is not None and user.name == "张三" and user.role is Role.MANAGER

    # /start again: already registered, greeted, the code is not needed.
    again = texts(await zhang.say("/start"))
    assert L("menu.hello", name="张三") in again


async def test_strangers_get_how_to_get_a_code_and_no_data(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 机密内容")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    assert len(await worklog_rows(services)) == 1

    stranger = TgUser(fake_api, 777, "路人")
    for text in ("你好", "我的日志", "/logs", "/log", "记录巡视 3号台区", "/start", "/cancel"):
        reply = await stranger.say(text)
        assert [body(m) for m in reply] == [L("start.need_code")], text
        assert not any(has_keyboard(m) for m in reply)
    r = await stranger.tap(stranger.sent[0]["message_id"], "-|log|1")  # a forged button
    assert body(r[0]) == L("start.need_code")
    assert texts(await stranger.say("/start WRONG")) == L("start.code_unknown")
    assert "机密内容" not in texts(stranger.sent) and "张三" not in texts(stranger.sent)
    assert await services.people.by_identity("telegram", "777") is None
    assert await open_drafts(services) == 0


async def test_used_and_expired_codes_are_refused(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services,
        clock: FakeClock) -> None:
    invite = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name="张三", now=clock.now(),
        ttl=timedelta(days=7))
    first = TgUser(fake_api, 42, "张三")
    assert L("menu.welcome", name="张三") in texts(await first.say(f"/start {invite.code}"))
    other = TgUser(fake_api, 43, "李四")
    assert texts(await other.say(f"/start {invite.code}")) == L("start.code_used")
    # Codes are read case-insensitively (typed on a phone), still refused once used.
    assert texts(await other.say(f"/start {invite.code.lower()}")) == L("start.code_used")

    late = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name="李四", now=clock.now(),
        ttl=timedelta(days=7))
    clock.advance(days=8)
    assert texts(await other.say(f"/start {late.code}")) == L("start.code_expired")
    assert await services.people.by_identity("telegram", "43") is None


async def test_wrong_codes_are_throttled_even_before_a_right_one(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    invite = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name="张三",
        now=services.clock.now(), ttl=timedelta(days=7))
    guesser = TgUser(fake_api, 66, "猜码")
    for i in range(5):
        assert texts(await guesser.say(f"/start WRONG{i}")) == L("start.code_unknown")
    assert texts(await guesser.say(f"/start {invite.code}")) == L("start.too_many", minutes=10)
    assert await services.people.by_identity("telegram", "66") is None
    # Another chat is not affected, and the code is still good.
    other = TgUser(fake_api, 67, "张三")
    assert L("menu.welcome", name="张三") in texts(await other.say(f"/start {invite.code}"))
    # Registered users sending a code again are told they need none.
    again = await other.say(f"/start {invite.code}")
    assert body(again[0]) == L("start.already")
    assert L("menu.hello", name="张三") in body(again[1])


async def test_lead_greeting_mentions_the_team(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    await services.people.create_invite(  # the team's areas exist before the lead joins
        role=Role.MANAGER, team="城东供电所", areas=["3号台区", "5号台区", "7号台区"],
        name=None, now=services.clock.now(), ttl=timedelta(days=1))
    lead = await register(fake_api, services, 50, "王班长", Role.LEAD, areas=())
    assert L("menu.welcome", name="王班长") in texts(lead.greeting)
    assert L("menu.role.lead", team="城东供电所",
             areas="3号台区、5号台区、7号台区") in texts(lead.greeting)


# --- 2. the whole form by buttons -----------------------------------------------------------
async def test_whole_worklog_form_by_buttons_photos_and_location(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    first = await zhang.say("/log")
    assert len(first) == 1
    items_msg = first[0]
    assert body(items_msg).startswith(L("form.worklog.items"))
    assert labels(items_msg)[:3] == ["☐ 走访", "☐ 宣传", "☐ 受托办理"]
    assert "✔️ 完成" in labels(items_msg) and "✖️ 取消" in labels(items_msg)

    # Ticks edit the same message in place, no new message.
    n_sent = len(zhang.sent)
    await zhang.press("☐ 巡视")
    await zhang.press("☐ 走访")
    assert len(zhang.sent) == n_sent
    edits = [e for e in fake_api.edits(42) if e["message_id"] == items_msg["message_id"]]
    assert len(edits) == 2 and all(e["method"] == "editMessageText" for e in edits)
    assert "☑ 巡视" in labels(edits[0]) and "☐ 走访" in labels(edits[0])
    assert "☑ 巡视" in labels(edits[1]) and "☑ 走访" in labels(edits[1])
    assert [a["text"] for a in zhang.answers()] == [L("form.toggled")] * 2

    area = await zhang.press("完成")
    area_msg = area[0]
    assert body(area_msg).startswith(L("form.worklog.area"))
    assert labels(area_msg)[:2] == ["3号台区", "5号台区"]
    assert not has_keyboard(zhang.fake.bot().chat(42).bot_messages[items_msg["message_id"]])

    time_ = await zhang.press("3号台区")
    assert L("form.worklog.time") in body(time_[0])
    assert L("form.worklog.time.hint") in body(time_[0])
    assert "🕒 现在" in labels(time_[0])

    content = await zhang.press("现在")
    assert body(content[0]) == L("form.worklog.content")
    problems = await zhang.say("更换3号杆表箱锁具")
    assert body(problems[0]).startswith(L("form.worklog.problems"))
    photos_prompt = await zhang.press("跳过")  # problems are optional
    assert body(photos_prompt[0]).startswith(L("form.worklog.photos"))

    p1 = await zhang.photo("ph-A")
    assert body(p1[0]) == L("form.photo_received", count=1)
    p2 = await zhang.photo("ph-B")
    assert body(p2[0]) == L("form.photo_received", count=2)
    loc_prompt = await zhang.press("完成")
    assert body(loc_prompt[0]).startswith(L("form.worklog.location"))

    summary = summary_of(await zhang.location(31.82, 117.23))
    assert summary == "\n".join([
        L("form.summary_title", title="工作日志"),
        "工作项目：巡视、走访",
        "台区：3号台区",
        f"时间：{NOW_SHOWN}",
        "工作内容：更换3号杆表箱锁具",
        "发现问题：（无）",
        "照片：2 张",
        "位置：31.82000, 117.23000",
    ])
    # The fuller entry's optional fields (#13 §5) are offered under 保存, never asked.
    assert labels(zhang.last) == ["✅ 保存", "✏️ 修改", *EXTRAS_OFFERED, "⬅️ 上一步", "✖️ 取消"]

    saved = await zhang.press("保存")
    rows = await worklog_rows(services)
    assert len(rows) == 1
    row = rows[0]
    assert L("form.worklog.saved", id=row["id"], when=NOW_SHOWN, area="3号台区",
             items="巡视、走访") in texts(saved)
    assert zhang.answers()[-1]["text"] == L("form.saved_toast")
    assert row["items"] == ["patrol", "visit"]
    assert row["area_name"] == "3号台区" and row["user_name"] == "张三"
    assert row["content"] == "更换3号杆表箱锁具" and row["problems"] is None
    assert row["photos"] == ["telegram:ph-A", "telegram:ph-B"]
    assert (row["latitude"], row["longitude"]) == (31.82, 117.23)
    assert row["occurred_at"] == "2026-11-27T02:30:00+00:00"
    assert row["created_at"] == "2026-11-27T02:30:00+00:00"
    assert row["time_precision"] == "minute"
    assert await open_drafts(services) == 0

    # Every form message whose button was pressed lost its keyboard (no stale taps later).
    msgs = fake_api.bot().chat(42).bot_messages
    for m in (items_msg, area_msg, time_[0], problems[0]):
        assert not has_keyboard(msgs[m["message_id"]]), body(m)


# --- 3. prefill from free text ----------------------------------------------------------
async def test_prefill_asks_only_what_is_missing(zhang: TgUser, services: Services) -> None:
    r = await zhang.say("记录巡视 3号台区")
    assert len(r) == 1
    assert body(r[0]).startswith(
        L("form.prefilled", title="工作日志", values="工作项目 巡视 · 台区 3号台区"))
    assert L("form.worklog.time") in body(r[0])
    assert "🕒 现在" in labels(r[0])
    assert L("form.worklog.items") not in body(r[0]) and L("form.worklog.area") not in body(r[0])
    assert body((await zhang.press("现在"))[0]) == L("form.worklog.content")
    await zhang.say("/cancel")
    assert body((await zhang.press("确定放弃"))[0]) == L("form.cancelled", form="工作日志")

    r = await zhang.say("巡视 3号台区 昨天下午3点 2号杆拉线松动")
    assert body(r[0]) == "\n".join([
        L("form.prefilled", title="工作日志",
          values=f"工作项目 巡视 · 台区 3号台区 · 时间 {YESTERDAY_3PM} · 工作内容 2号杆拉线松动"),
        L("form.worklog.problems")])
    assert await zhang.say("/cancel")
    await zhang.press("确定放弃")

    r = await zhang.say("记录 走访 5号台区 昨天下午3点")
    assert body(r[0]) == "\n".join([
        L("form.prefilled", title="工作日志",
          values=f"工作项目 走访 · 台区 5号台区 · 时间 {YESTERDAY_3PM}"),
        L("form.worklog.content")])
    await zhang.say("入户走访独居老人")
    await zhang.press("跳过")
    await zhang.press("跳过")
    summary = summary_of(await zhang.press("跳过"))
    assert f"时间：{YESTERDAY_3PM}" in summary and "台区：5号台区" in summary
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert (row["items"], row["area_name"], row["occurred_at"], row["content"]) == (
        ["visit"], "5号台区", "2026-11-26T07:00:00+00:00", "入户走访独居老人")


@pytest.mark.parametrize("area", ["7号台区", "8号台区"])
async def test_prefill_with_an_area_the_user_does_not_have(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services, area: str) -> None:
    # 7号台区 belongs to the same team (李四's), 8号台区 to another team.
    await register(fake_api, services, 43, "李四", areas=("7号台区",))
    await register(fake_api, services, 44, "赵六", team="城西供电所", areas=("8号台区",))
    zhang = await register(fake_api, services, 42, "张三")
    r = await zhang.say(f"记录巡视 {area}")
    assert len(r) == 1
    shown = body(r[0])
    assert "⚠️ " + L("form.worklog.area.unknown", text=area,
                     options="3号台区、5号台区") in shown
    assert L("form.worklog.area") in shown  # and the area is asked, nothing picked silently
    assert labels(r[0])[:2] == ["3号台区", "5号台区"]
    assert area not in labels(r[0])
    draft = await services.conversations.get(
        (await services.people.by_identity("telegram", "42")).id)  # type: ignore[union-attr]
    assert draft is not None and "area" not in draft.state.values
    assert draft.state.values["items"] == ["patrol"]


async def test_prefill_bare_area_number_takes_the_area(zhang: TgUser,
                                                      services: Services) -> None:
    # '3号' is part of one area only: taken at once (#15; it used to be a suggestion).
    r = await zhang.say("记录巡视 3号")
    assert L("form.did_you_mean", text="3号", options="3号台区") not in body(r[0])
    assert L("form.worklog.time") in body(r[0])
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values["area"] == "1"  # 3号台区's id


async def test_area_part_typed_at_its_step_is_taken(zhang: TgUser, services: Services) -> None:
    await zhang.say("/log")
    await zhang.press("☐ 巡视")
    await zhang.press("完成")
    r = await zhang.say("5号")  # part of 5号台区 and of no other area (#15)
    assert body(r[0]) == L("form.worklog.time") + "\n" + L("form.worklog.time.hint")
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values["area"] == "2"  # 5号台区's id


async def test_did_you_mean_is_a_button_that_answers_the_step(zhang: TgUser,
                                                              services: Services) -> None:
    await zhang.say("/log")
    await zhang.press("☐ 巡视")
    await zhang.press("完成")
    # More than an area's name: a close match, offered as one button on top, never taken.
    r = await zhang.say("3号台区那边")
    assert body(r[0]) == "\n".join(["⚠️ " + L("form.did_you_mean", text="3号台区那边",
                                                options="3号台区"), L("form.worklog.area")])
    rows = r[0]["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["3号台区"]  # the suggestion alone on top ...
    assert labels(r[0]).count("3号台区") == 1 and "5号台区" in labels(r[0])  # ... not twice
    r = await zhang.press("3号台区")  # one tap answers the step
    assert L("form.worklog.time") in body(r[0])
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values["area"] == "1"


async def test_did_you_mean_with_several_close_matches_lists_them(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    user = await register(fake_api, services, 42, "张三",
                          areas=("城东3号台区", "城西3号台区", "5号台区"))
    await user.say("/log")
    await user.press("☐ 巡视")
    await user.press("完成")
    r = await user.say("3号台区")  # part of two areas: both offered on top, neither taken
    assert L("form.did_you_mean", text="3号台区", options="城东3号台区、城西3号台区") in body(r[0])
    first_row = r[0]["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in first_row] == ["城东3号台区", "城西3号台区"]
    r = await user.press("城西3号台区")
    assert L("form.worklog.time") in body(r[0])


async def test_prefill_notice_is_not_repeated_on_the_next_answer(zhang: TgUser) -> None:
    await zhang.say("记录巡视 3号")
    r = await zhang.say("5号")
    assert "「3号」" not in body(r[0]), body(r[0])


async def test_typed_number_at_area_step_never_picks_by_database_id(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    user = await register(fake_api, services, 42, "张三", areas=("2号台区", "1号台区"))
    await user.say("/log")
    await user.press("☐ 巡视")
    await user.press("完成")
    r = await user.say("1")  # 2号台区 has id 1; the user means 1号台区, the only one with 1
    assert L("form.worklog.time") in body(r[0])
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values["area"] == "2"  # 1号台区, not id 1


# --- 4. back / skip / cancel / help / edit -------------------------------------------------
async def test_back_skip_help_cancel_confirm_and_edit_at_summary(
        zhang: TgUser, services: Services) -> None:
    await zhang.say("/log")
    assert "⬅️ 上一步" not in labels(zhang.last)  # the first step offers no back button
    assert L("form.first_step") in body((await zhang.say("上一步"))[0])
    await zhang.press("☐ 巡视")
    await zhang.press("完成")
    await zhang.press("3号台区")
    await zhang.press("现在")
    # Back from content: the time step again, showing what was given and offering to keep it.
    r = await zhang.press("上一步")
    assert body(r[0]) == "\n".join([L("form.worklog.time"),
                                    L("form.current_value", value=NOW_SHOWN),
                                    L("form.worklog.time.hint")])
    assert "保持不变" in labels(r[0])
    r = await zhang.press("保持不变")
    assert body(r[0]) == L("form.worklog.content")
    # A required field has no skip button and refuses a typed skip.
    assert "⏭ 跳过" not in labels(r[0])
    r = await zhang.say("跳过")
    assert body(r[0]) == "\n".join([L("form.required"), L("form.worklog.content")])
    await zhang.say("巡视台区低压线路")
    r = await zhang.press("跳过")  # problems
    assert body(r[0]).startswith(L("form.worklog.photos"))
    await zhang.press("跳过")  # photos
    summary = summary_of(await zhang.say("跳过"))  # location, typed
    assert "台区：3号台区" in summary and "发现问题：（无）" in summary

    # /help keeps the form: help, then the summary again.
    r = await zhang.say("/help")
    assert body(r[0]).startswith(L("help.body"))
    assert body(r[1]).startswith(L("help.in_form"))
    assert L("form.summary_title", title="工作日志") in body(r[1])
    assert labels(r[1]) == ["✅ 保存", "✏️ 修改", *EXTRAS_OFFERED, "⬅️ 上一步", "✖️ 取消"]

    # Cancel by button asks first; "继续填写" keeps everything.
    r = await zhang.press("取消")
    assert body(r[0]) == L("form.cancel_confirm", form=f"工作日志（巡视，3号台区，{NOW_SHOWN}）")
    assert labels(r[0]) == ["确定放弃", "继续填写"]
    assert await open_drafts(services) == 1
    r = await zhang.press("继续填写")
    assert summary_of(r) == summary

    # Edit one field at the summary: the area.
    r = await zhang.press("修改")
    assert body(r[0]) == L("form.edit_which")
    assert "台区" in labels(r[0]) and "↩️ 回到摘要" in labels(r[0])
    r = await zhang.press("台区")
    assert body(r[0]).startswith(L("form.worklog.area"))
    assert L("form.current_value", value="3号台区") in body(r[0])
    summary = summary_of(await zhang.press("5号台区"))  # straight back to the summary
    assert "台区：5号台区" in summary and "工作内容：巡视台区低压线路" in summary
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["area_name"] == "5号台区" and row["content"] == "巡视台区低压线路"
    assert row["items"] == ["patrol"]
    assert texts(await zhang.say("/cancel")) == L("form.nothing_to_cancel")


async def test_cancel_command_confirms_and_cancel_button_yes_discards(
        zhang: TgUser, services: Services) -> None:
    await zhang.say("记录巡视 3号台区 昨天下午3点")
    assert await open_drafts(services) == 1
    # #15: /cancel asks first, exactly like the ✖️ button (it used to cancel at once).
    r = await zhang.say("/cancel")
    assert body(r[0]) == L("form.cancel_confirm",
                           form=f"工作日志（巡视，3号台区，{YESTERDAY_3PM}）")
    assert labels(r[0]) == ["确定放弃", "继续填写"]
    assert await open_drafts(services) == 1
    r = await zhang.press("确定放弃")
    assert body(r[0]) == L("form.cancelled", form="工作日志")
    assert labels(r[0]) == ["📝 记录日志", "📋 我的日志"]
    assert await open_drafts(services) == 0

    await zhang.say("记录巡视 3号台区 昨天下午3点")
    await zhang.press("取消")
    r = await zhang.press("确定放弃")
    assert body(r[0]) == L("form.cancelled", form="工作日志")
    assert await open_drafts(services) == 0
    assert await worklog_rows(services) == []
    # Typed words ask the same question (a thumb in a hurry, or a word said in passing).
    await zhang.say("记录巡视 3号台区")
    for word in ("算了", "不填了", "放弃", "取消"):
        r = await zhang.say(word)
        assert body(r[0]) == L("form.cancel_confirm", form="工作日志（巡视，3号台区）"), word
        assert labels(r[0]) == ["确定放弃", "继续填写"]
        r = await zhang.press("继续填写")
        assert body(r[0]).startswith(L("form.worklog.time")), word
    await zhang.say("算了")
    r = await zhang.say("是")  # a typed yes answers the question, not the time step
    assert body(r[0]) == L("form.cancelled", form="工作日志")
    assert await open_drafts(services) == 0
    assert await worklog_rows(services) == []


async def test_second_form_while_one_is_open_asks_first(zhang: TgUser,
                                                        services: Services) -> None:
    await zhang.say("记录巡视 3号台区 昨天下午3点")
    r = await zhang.say("/log")
    assert body(r[0]) == L("form.conflict", form=f"工作日志（巡视，3号台区，{YESTERDAY_3PM}）")
    r = await zhang.press("继续填写")
    assert body(r[0]) == L("form.worklog.content")
    await zhang.say("/log")
    r = await zhang.press("放弃并新建")
    assert body(r[0]) == L("form.discarded")
    assert body(r[1]).startswith(L("form.worklog.items"))
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values == {}


async def test_a_request_typed_mid_form_asks_instead_of_being_the_answer(
        zhang: TgUser, services: Services) -> None:
    first = f"工作日志（巡视，3号台区，{YESTERDAY_3PM}）"
    await at_content_step(zhang)
    await zhang.say("更换表箱")
    # Prose that merely starts like a request is the answer: 发现问题 taken, no question.
    r = await zhang.say("查客户家电表箱")
    assert body(r[0]).startswith(L("form.worklog.photos"))
    assert (await values_of(services))["problems"] == "查客户家电表箱"
    # A whole message that is a request asks first, and is never taken as the answer.
    r = await zhang.say("登记投诉")
    assert body(r[0]) == L("form.switch", text="登记投诉", form=first)
    assert labels(r[0]) == ["继续填写", "先放一边", "放弃"]
    r = await zhang.press("继续填写")
    assert body(r[0]).startswith(L("form.worklog.photos"))
    # Set aside: the new log opens prefilled; a list asked meanwhile leaves that one open.
    await zhang.say("记录巡视 5号台区")
    r = await zhang.press("先放一边")
    assert body(r[0]) == L("form.set_aside", form=first)
    assert body(r[1]).startswith(
        L("form.prefilled", title="工作日志", values="工作项目 巡视 · 台区 5号台区"))
    assert await open_drafts(services) == 1
    r = await zhang.say("我的待办")
    assert body(r[0]) == L("form.switch", text="我的待办", form="工作日志（巡视，5号台区）")
    r = await zhang.press("先放一边")
    assert body(r[0]) == L("todo.none")
    assert body(r[1]).startswith(L("help.in_form"))
    # The new one cancelled: back to the one set aside, where it stopped, nothing lost.
    await zhang.say("/cancel")
    r = await zhang.press("确定放弃")
    assert body(r[0]) == L("form.cancelled", form="工作日志")
    assert body(r[1]).startswith(L("form.set_aside_back", form=first))
    assert L("form.worklog.photos") in body(r[1])
    assert (await values_of(services))["problems"] == "查客户家电表箱"
    # Discard: the form goes, the request is done.
    await zhang.say("查客户 李四")
    r = await zhang.press("放弃")
    assert body(r[0]) == L("form.discarded")
    assert body(r[1]) == L("customers.none", text="李四")
    assert await open_drafts(services) == 0
    assert await worklog_rows(services) == []


async def test_a_second_form_set_aside_comes_back_after_saving(zhang: TgUser,
                                                               services: Services) -> None:
    await at_content_step(zhang)
    r = await zhang.say("/log")
    assert labels(r[0]) == ["继续填写", "先放一边", "放弃并新建"]
    r = await zhang.press("先放一边")
    assert body(r[1]).startswith(L("form.worklog.items"))
    await zhang.press("巡视")
    await zhang.press("完成")
    await zhang.press("5号台区")
    await zhang.press("现在")
    await zhang.say("更换表箱")
    for _ in range(3):
        r = await zhang.press("跳过")
    assert "台区：5号台区" in summary_of(r)
    r = await zhang.press("保存")
    assert body(r[0]).startswith("✅")
    assert body(r[1]) == "\n".join([
        L("form.set_aside_back", form=f"工作日志（巡视，3号台区，{YESTERDAY_3PM}）"),
        L("form.worklog.content")])
    assert len(await worklog_rows(services)) == 1 and await open_drafts(services) == 1


async def test_photos_and_location_sent_before_a_log_are_attached_to_it(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    r = await zhang.photo("ph-1")
    assert body(r[0]) == L("media.loose_photo", count=1, minutes=10)
    r = await zhang.photo("ph-2")  # several in a row: all kept
    assert body(r[0]) == L("media.loose_photo", count=2, minutes=10)
    await zhang.location(31.2, 121.4)
    clock.advance(minutes=5)
    r = await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    assert L("form.worklog.loose_photos_location", count=2) in body(r[0])
    assert labels(r[0])[0] == "🗑 不附这些"
    summary = summary_of(await zhang.press("跳过"))  # problems; photos and location are in
    assert "照片：2 张" in summary and "位置：31.20000, 121.40000" in summary
    await zhang.press("保存")
    row = (await worklog_rows(services))[0]
    assert row["photos"] == ["telegram:ph-1", "telegram:ph-2"] and row["latitude"] == 31.2
    # Taken once: the next log starts without them.
    r = await zhang.say("/log")
    assert "🗑 不附这些" not in labels(r[0])
    assert L("form.worklog.loose_photos", count=2) not in body(r[0])
    # Not wanted: one tap takes them out again.
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.photo("ph-3")
    r = await zhang.say("记录巡视 3号台区")
    assert L("form.worklog.loose_photos", count=1) in body(r[0])
    r = await zhang.press("不附这些")
    assert body(r[0]).startswith(L("form.worklog.loose_dropped"))
    assert (await values_of(services))["photos"] == []
    # Past the window they are forgotten, and gone from the database.
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.photo("ph-4")
    clock.advance(minutes=11)
    r = await zhang.say("记录巡视 3号台区")
    assert "📎" not in body(r[0]) and "🗑 不附这些" not in labels(r[0])
    assert (await services.db.fetchone("SELECT count(*) FROM loose_media"))[0] == 0


# --- 5. restart mid-form ----------------------------------------------------------------
async def test_restart_mid_form_continues_and_old_buttons_behave(
        settings: Settings, clock: FakeClock, services: Services,
        fake_api: FakeBotAPI) -> None:
    channel = await start_channel(services, settings, fake_api)
    zhang = await register(fake_api, services, 42, "张三")
    await zhang.say("记录巡视 3号台区")
    content_prompt = (await zhang.say("昨天下午3点"))[0]
    assert body(content_prompt) == L("form.worklog.content")
    assert labels(content_prompt) == ["⬅️ 上一步", "✖️ 取消"]
    await channel.stop()
    await services.close()

    clock.advance(minutes=5)
    services2 = await Services.open(settings, clock)
    channel2 = await start_channel(services2, settings, fake_api)
    try:
        # The next message answers the step that was open before the restart.
        r = await zhang.say("紧固2号杆拉线")
        assert body(r[0]).startswith(L("form.worklog.problems"))
        # A button on a message from before the restart still works: the form is open.
        r = await zhang.press("上一步", message=content_prompt)
        assert body(r[0]) == "\n".join([L("form.worklog.content"),
                                        L("form.current_value", value="紧固2号杆拉线")])
        assert not has_keyboard(fake_api.bot().chat(42).bot_messages[
            content_prompt["message_id"]])
        await zhang.press("保持不变")
        await zhang.press("跳过")
        await zhang.press("跳过")
        summary = summary_of(await zhang.press("跳过"))
        assert f"时间：{YESTERDAY_3PM}" in summary and "工作内容：紧固2号杆拉线" in summary
        saved_msg = zhang.last
        await zhang.press("保存", message=saved_msg)
        rows = await worklog_rows(services2)
        assert len(rows) == 1
        assert rows[0]["content"] == "紧固2号杆拉线"
        assert rows[0]["occurred_at"] == "2026-11-26T07:00:00+00:00"
        assert rows[0]["items"] == ["patrol"] and rows[0]["area_name"] == "3号台区"

        # After the save an old form button answers "stale" and changes nothing.
        old_time_prompt = [m for m in zhang.sent if "🕒 现在" in labels(m)]
        assert old_time_prompt, "the typed-over time prompt kept its buttons"
        n_answers = len(zhang.answers())
        r = await zhang.press("现在", message=old_time_prompt[-1])
        assert zhang.answers()[n_answers]["text"] == L("button.stale")
        assert L("button.stale_long") in texts(r)
        assert len(await worklog_rows(services2)) == 1
        assert await open_drafts(services2) == 0
    finally:
        await channel2.stop()
        await services2.close()


async def test_update_delivered_before_a_restart_is_not_processed_twice(
        settings: Settings, clock: FakeClock, services: Services,
        fake_api: FakeBotAPI) -> None:
    """Stopping the channel confirms the updates it handled: no reply is sent twice."""
    channel = await start_channel(services, settings, fake_api)
    zhang = await register(fake_api, services, 42, "张三")
    await zhang.say("记录巡视 3号台区 昨天下午3点 更换表箱")
    await channel.stop()
    n_sent = len(zhang.sent)
    channel2 = await start_channel(services, settings, fake_api)
    try:
        r = await zhang.say("/help")
        assert len(zhang.sent) == n_sent + len(r) == n_sent + 2
    finally:
        await channel2.stop()


# --- 6. expiry: an idle form is parked, not lost ------------------------------------------
async def test_answer_typed_after_31_minutes_is_kept_and_applied_on_continue(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    await zhang.say("记录巡视 3号台区")
    clock.advance(minutes=29)
    r = await zhang.press("现在")  # still open at 29 minutes; the clock restarts
    assert body(r[0]) == L("form.worklog.content")
    clock.advance(minutes=31)
    r = await zhang.say("更换表箱")
    assert body(r[-1]) == "\n".join([
        L("form.park.notice", form="工作日志", minutes=30, until="2026-11-28 周六 11:29"),
        L("form.park.filled", values="工作项目 巡视 · 台区 3号台区 · 时间 2026-11-27 周五 10:59"),
        L("form.park.next", field="工作内容"),
        L("form.park.held_answer", text="更换表箱", field="工作内容"),
        L("form.park.question")])
    assert labels(r[-1]) == ["继续填写", "放弃"]
    assert await open_drafts(services) == 1  # parked, not deleted
    r = await zhang.press("继续填写")
    assert body(r[0]) == L("form.worklog.problems")  # "更换表箱" answered 工作内容
    for _ in range(3):
        await zhang.press("跳过")
    await zhang.press("保存")
    assert [row["content"] for row in await worklog_rows(services)] == ["更换表箱"]


async def test_save_pressed_on_a_parked_complete_form_saves_after_choosing(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    await zhang.press("跳过")
    await zhang.press("跳过")
    r = await zhang.press("跳过")
    summary = r[0]
    clock.advance(minutes=31)
    r = await zhang.press("保存", message=summary)
    assert zhang.answers()[-1]["text"] == L("form.park.toast")
    assert L("form.park.complete") in body(r[0]) and L("form.park.held_save") in body(r[0])
    assert labels(r[0]) == ["✅ 保存", "继续填写", "放弃"]
    assert await worklog_rows(services) == []
    await zhang.press("保存", message=r[0])
    rows = await worklog_rows(services)
    assert [row["content"] for row in rows] == ["更换表箱"]
    assert await open_drafts(services) == 0


async def test_parked_form_is_dropped_after_the_park_window_and_said_once(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    clock.advance(minutes=30 + 23 * 60)  # parked for 23 hours: still offered back
    r = await zhang.say("/help")
    assert L("form.park.held_request", text="/help") in body(r[-1])
    clock.advance(hours=2)  # 25 hours after parking: gone
    r = await zhang.say("/help")
    assert body(r[0]) == L("form.park.gone",
                           form=f"工作日志（巡视，3号台区，{YESTERDAY_3PM}）", hours=24)
    assert await open_drafts(services) == 0 and await worklog_rows(services) == []
    r = await zhang.say("/help")
    assert L("form.park.gone", form=f"工作日志（巡视，3号台区，{YESTERDAY_3PM}）",
             hours=24) not in texts(r)


# --- 7. bad input -----------------------------------------------------------------------
async def at_content_step(user: TgUser) -> None:
    r = await user.say("记录巡视 3号台区 昨天下午3点")
    assert body(r[0]).endswith(L("form.worklog.content"))


async def values_of(services: Services) -> dict:
    draft = await services.conversations.get(1)
    assert draft is not None, "the form was lost"
    return draft.state.values


async def test_blank_and_too_long_text_are_refused_and_nothing_is_lost(
        zhang: TgUser, services: Services, channel: TelegramChannel) -> None:
    await at_content_step(zhang)
    before = await values_of(services)
    reprompt = "\n".join(["⚠️ " + L("form.empty_text"), L("form.worklog.content")])
    assert [body(m) for m in await zhang.say("   ")] == [reprompt]
    assert [body(m) for m in await zhang.say("\u3000\n\t")] == [reprompt]

    for n in (3000, 5000):  # users can send 4096; the fake lets a longer one through too
        r = await zhang.say("长" * n)
        assert [body(m) for m in r] == ["\n".join([
            "⚠️ " + L("form.too_long", length=n, limit=2000), L("form.worklog.content")])]
        assert "2000" in body(r[0])
    assert await values_of(services) == before

    # Straight into the core as well (another channel could hand it 5,000 characters).
    out = await channel.assistant.handle(Incoming("telegram", "42", text="长" * 5000))
    assert "2000" in out.replies[0].text and "5000" in out.replies[0].text
    assert await values_of(services) == before

    # Exactly at the limit is accepted.
    r = await zhang.say("短" * 2000)
    assert body(r[0]).startswith(L("form.worklog.problems"))
    assert (await values_of(services))["content"] == "短" * 2000


async def test_emoji_sql_and_markup_are_stored_and_echoed_literally(
        zhang: TgUser, services: Services, fake_api: FakeBotAPI) -> None:
    content = "'; DROP TABLE worklogs; -- ⚡🔧 更换表箱 👍🏽"
    problems = "<b>bold</b> *_[ `x` &amp; \\n"
    await at_content_step(zhang)
    await zhang.say(content)
    await zhang.say(problems)
    await zhang.press("跳过")
    summary = summary_of(await zhang.press("跳过"))
    assert f"工作内容：{content}" in summary
    assert f"发现问题：{problems}" in summary
    assert all(m.get("parse_mode") is None for m in zhang.sent)  # plain text, never parsed
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["content"] == content and row["problems"] == problems
    still = await services.db.fetchone("SELECT count(*) FROM worklogs")  # the table is there
    assert still is not None and still[0] == 1
    r = await zhang.press(f"#{row['id']}", message=(await zhang.say("/logs"))[0])
    assert f"工作内容：{content}" in body(r[0]) and f"发现问题：{problems}" in body(r[0])


async def test_content_keeps_line_breaks_and_chinese_punctuation(
        zhang: TgUser, services: Services) -> None:
    content = "1. 更换表箱锁具；\n2. 紧固接线（A相），测试正常：OK！"
    await at_content_step(zhang)
    await zhang.say(content)
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["content"] == content


async def test_future_and_unparseable_times_are_refused(zhang: TgUser,
                                                       services: Services) -> None:
    r = await zhang.say("记录巡视 3号台区")
    hint = L("form.worklog.time.hint")
    r = await zhang.say("明早8点")
    assert body(r[0]) == "\n".join([
        "⚠️ " + L("form.worklog.time.future", when="2026-11-28 周六 08:00", now=NOW_SHOWN),
        L("form.worklog.time")])
    r = await zhang.say("啊啊啊")
    assert body(r[0]) == "\n".join([
        "⚠️ " + L("form.worklog.time.unparsed", text="啊啊啊"), L("form.worklog.time"), hint])
    assert "🕒 现在" in labels(r[0])
    assert await values_of(services) == {"items": ["patrol"], "area": "1"}
    r = await zhang.say("今天上午9点半")
    assert body(r[0]) == L("form.worklog.content")
    assert (await values_of(services))["time"] == {"at": "2026-11-27T01:30:00+00:00",
                                                   "has_time": True}


async def test_future_time_in_a_prefill_is_refused_and_asked(zhang: TgUser,
                                                            services: Services) -> None:
    r = await zhang.say("巡视 3号台区 明早8点")
    assert "⚠️ " + L("form.worklog.time.future", when="2026-11-28 周六 08:00",
                     now=NOW_SHOWN) in body(r[0])
    assert L("form.worklog.time") in body(r[0])
    assert "time" not in await values_of(services)


async def test_photo_and_location_at_a_text_step_are_kept(zhang: TgUser,
                                                         services: Services) -> None:
    await at_content_step(zhang)
    r = await zhang.photo("ph-early")
    assert body(r[0]) == "\n".join([L("form.photo_kept", count=1), L("form.worklog.content")])
    r = await zhang.location(31.8, 117.2)
    assert body(r[0]) == "\n".join([L("form.location_kept"), L("form.worklog.content")])
    await zhang.say("更换表箱")
    r = await zhang.press("跳过")  # problems: photos and location are already given
    summary = summary_of(r)
    assert "照片：1 张" in summary and "位置：31.80000, 117.20000" in summary
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["photos"] == ["telegram:ph-early"]
    assert (row["latitude"], row["longitude"]) == (31.8, 117.2)


async def test_text_at_photo_and_location_steps_is_answered(zhang: TgUser,
                                                           services: Services) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    await zhang.press("跳过")
    r = await zhang.say("照片在这")
    assert body(r[0]).startswith("⚠️ " + L("form.expect_photo"))
    await zhang.press("跳过")
    r = await zhang.say("在3号杆")
    assert body(r[0]).startswith("⚠️ " + L("form.expect_location"))
    assert (await values_of(services))["content"] == "更换表箱"


def not_read(name: str) -> str:
    """The answer to a file no feature reads: which files are read (#14)."""
    return "\n".join([L("files.not_read", name=name),
                      L("files.readable_line", what=L("arrimp.file_kind")),
                      L("files.readable_line", what=L("lineloss.upload.describe"))])


async def test_document_sticker_and_unknown_command_mid_form(zhang: TgUser,
                                                             services: Services) -> None:
    await at_content_step(zhang)
    before = await values_of(services)
    # A file no feature reads (#14: files are offered to the readers) says which files are
    # read; a sticker is still not understood. Neither costs the form.
    for send, note in ((zhang.document, not_read("report.pdf")),
                       (zhang.sticker, L("media.unsupported"))):
        r = await send()
        assert [body(m) for m in r] == ["\n".join([note, L("form.worklog.content")])]
    r = await zhang.say("/foo")
    assert body(r[0]) == L("menu.unknown_command", command="foo", commands=CMD_LIST)
    assert body(r[1]) == "\n".join([L("help.in_form"), L("form.worklog.content")])
    assert await values_of(services) == before
    # Outside a form: the same answers, with the menu.
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    r = await zhang.document()
    assert body(r[0]) == not_read("report.pdf") and has_keyboard(r[0])
    r = await zhang.say("/foo")
    assert [body(m) for m in r] == [L("menu.unknown_command", command="foo", commands=CMD_LIST)]
    r = await zhang.photo("ph-x")  # #15: kept for the next log now, not thrown away
    assert body(r[0]) == L("media.loose_photo", count=1, minutes=10)
    r = await zhang.location(1.0, 2.0)
    assert body(r[0]) == L("media.loose_location", minutes=10)
    assert await worklog_rows(services) == []


async def test_long_card_is_split_into_messages_within_telegram_limit(
        zhang: TgUser, services: Services) -> None:
    await at_content_step(zhang)
    await zhang.say("内" * 2000)
    await zhang.say("问" * 2000)
    await zhang.press("跳过")
    summary = await zhang.press("跳过")
    assert all(len(body(m)) <= 4096 for m in summary)
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["content"] == "内" * 2000 and row["problems"] == "问" * 2000
    listing = await zhang.say("/logs")
    card = await zhang.press(f"#{row['id']}", message=listing[0])
    card = [m for m in card if m["message_id"] > listing[0]["message_id"]]
    assert len(card) >= 2
    assert all(len(body(m)) <= 4096 for m in card)
    joined = texts(card)
    assert L("logs.card_title", id=row["id"]) in joined
    assert "内" * 2000 in joined.replace("\n", "") and "问" * 2000 in joined.replace("\n", "")
    assert "📋 我的日志" in labels(card[-1])  # the buttons come with the last part
    assert not any(has_keyboard(m) for m in card[:-1])


# --- 8. /logs and 我的日志 ----------------------------------------------------------------------
async def _seed(services: Services, tg_id: str, area: str, item: str, when: datetime,
                content: str, has_time: bool = True) -> int:
    user = await services.people.by_identity("telegram", tg_id)
    assert user is not None
    area_id = {a.name: a.id for a in await services.people.areas_for(user)}[area]
    return await services.worklogs.add(user, NewWorkLog(
        area_id=area_id, items=(item,), occurred_at=when, has_time=has_time, content=content),
        services.clock.now())


@pytest.fixture
async def team(channel: TelegramChannel, fake_api: FakeBotAPI,
               services: Services) -> dict[str, TgUser]:
    users = {
        "zhang": await register(fake_api, services, 42, "张三"),
        "lisi": await register(fake_api, services, 43, "李四", areas=("7号台区",)),
        "zhao": await register(fake_api, services, 44, "赵六", team="城西供电所",
                               areas=("8号台区",)),
        "wang": await register(fake_api, services, 50, "王班长", Role.LEAD, areas=()),
    }
    return users


async def test_logs_manager_sees_own_lead_sees_team_never_other_team(
        team: dict[str, TgUser], services: Services) -> None:
    a = await _seed(services, "42", "3号台区", "patrol", datetime(2026, 11, 26, 15, 0,
                                                               tzinfo=SHANGHAI), "拉线松动已紧固")
    b = await _seed(services, "42", "5号台区", "visit", datetime(2026, 11, 25, tzinfo=SHANGHAI),
                    "走访独居老人", has_time=False)
    c = await _seed(services, "43", "7号台区", "repair", datetime(2026, 11, 26, 9, 0,
                                                               tzinfo=SHANGHAI), "更换熔断器")
    d = await _seed(services, "44", "8号台区", "patrol", datetime(2026, 11, 26, 10, 0,
                                                               tzinfo=SHANGHAI), "城西机密")
    zhang, wang, zhao = team["zhang"], team["wang"], team["zhao"]

    listing = await zhang.say("/logs")
    assert body(listing[0]) == "\n".join([
        L("logs.title_mine", total=2, first=1, last=2),
        f"#{a} 2026-11-26 周四 15:00 3号台区 巡视",
        f"#{b} 2026-11-25 周三 5号台区 走访",
        L("logs.open_hint")])
    assert labels(listing[0]) == [f"#{a} 3号台区 巡视", f"#{b} 5号台区 走访"]
    assert [body(m) for m in await zhang.say("我的日志")] == [body(listing[0])]

    card = await zhang.press(f"#{a} 3号台区", message=listing[0])
    assert body(card[0]).startswith("\n".join([
        L("logs.card_title", id=a), "记录人：张三", "工作项目：巡视", "台区：3号台区",
        "时间：2026-11-26 周四 15:00", "工作内容：拉线松动已紧固", "发现问题：（无）",
        "照片：0 张"]))
    assert "记录于：2026-11-27 周五 10:30" in body(card[0])

    # A manager cannot open a teammate's entry, nor another team's, by forging the button.
    for other in (c, d):
        r = await zhang.tap(listing[0]["message_id"], f"-|log|{other}")
        assert body(r[0]) == L("logs.not_found")
        assert "更换熔断器" not in texts(r) and "城西机密" not in texts(r)

    team_list = await wang.say("/logs")
    assert body(team_list[0]) == "\n".join([
        L("logs.title_team", total=3, first=1, last=3),
        f"#{a} 2026-11-26 周四 15:00 3号台区 巡视 · 张三",
        f"#{c} 2026-11-26 周四 09:00 7号台区 报修 · 李四",
        f"#{b} 2026-11-25 周三 5号台区 走访 · 张三",
        L("logs.open_hint")])
    assert "8号台区" not in texts(wang.sent) and "赵六" not in texts(wang.sent)
    card = await wang.press(f"#{c} 7号台区", message=team_list[0])
    assert "记录人：李四" in body(card[0]) and "工作内容：更换熔断器" in body(card[0])
    r = await wang.tap(team_list[0]["message_id"], f"-|log|{d}")
    assert body(r[0]) == L("logs.not_found")
    r = await wang.tap(team_list[0]["message_id"], "-|log|99999")
    assert body(r[0]) == L("logs.not_found")

    other_team = await zhao.say("/logs")
    assert L("logs.title_mine", total=1, first=1, last=1) in body(other_team[0])
    r = await zhao.tap(other_team[0]["message_id"], f"-|log|{a}")
    assert body(r[0]) == L("logs.not_found")


async def test_logs_empty_and_paged(team: dict[str, TgUser], services: Services) -> None:
    zhang = team["zhang"]
    r = await zhang.say("我的日志")
    assert body(r[0]) == L("logs.none") and labels(r[0]) == ["📝 记录日志"]
    ids = [await _seed(services, "42", "3号台区", "patrol",
                       datetime(2026, 11, 20, 8, 0, tzinfo=SHANGHAI) + timedelta(hours=i),
                       f"第{i}条") for i in range(10)]
    r = await zhang.say("/logs")
    assert body(r[0]).startswith(L("logs.title_mine", total=10, first=1, last=8))
    assert f"#{ids[9]} " in body(r[0]) and f"#{ids[1]} " not in body(r[0])
    assert "下一页 ▶️" in labels(r[0]) and "◀️ 上一页" not in labels(r[0])
    r = await zhang.press("下一页")
    page2 = [m for m in r if L("logs.title_mine", total=10, first=9, last=10) in body(m)]
    assert page2 and f"#{ids[0]} " in body(page2[0]) and "◀️ 上一页" in labels(page2[0])


# --- 9. language ----------------------------------------------------------------------------
async def test_lang_en_switches_replies_and_chat_menu(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    r = await zhang.say("/lang en")
    assert body(r[0]) == L("lang.set", "en")
    assert labels(r[0]) == [L("btn.menu_log", "en"), L("btn.menu_logs", "en"),
                            L("btn.menu_help", "en")]
    chat_scope = {"type": "chat", "chat_id": 42}
    assert fake_api.my_commands(chat_scope) == [
        {"command": c, "description": d} for c, d in command_descriptions("en")]
    user = await services.people.by_identity("telegram", "42")
    assert user is not None and user.locale == "en"

    assert body((await zhang.say("/logs"))[0]) == L("logs.none", "en")
    r = await zhang.say("记录巡视 3号台区")
    assert L("form.worklog.time", "en") in body(r[0])
    assert L("btn.now", "en") in labels(r[0])
    assert body((await zhang.say("/lang xx"))[0]) == L("lang.usage", "en")

    r = await zhang.say("/lang zh")  # mid-form: switched, and the step asked again in Chinese
    assert body(r[0]) == L("lang.set")
    assert L("form.worklog.time") in texts(r[1:])
    assert fake_api.my_commands(chat_scope) == [
        {"command": c, "description": d} for c, d in command_descriptions("zh_CN")]


async def test_lang_usage_in_chinese(zhang: TgUser, fake_api: FakeBotAPI) -> None:
    for arg in ("/lang xx", "/lang"):
        assert [body(m) for m in await zhang.say(arg)] == [L("lang.usage")]
    assert fake_api.my_commands({"type": "chat", "chat_id": 42}) == []


# --- 10. ordering and concurrency -----------------------------------------------------------
async def _until(user: TgUser, expected: str, after: int, timeout: float = 20.0) -> dict:
    """Wait for a bot message (after the first `after`) whose text contains `expected`."""
    def seen(sent: list[dict]) -> bool:
        return any(expected in body(m) for m in sent[after:])

    sent = await user.fake.wait_for(user.chat_id, predicate=seen, timeout=timeout)
    return next(m for m in sent[after:] if expected in body(m))


async def test_twenty_users_fill_whole_forms_concurrently(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    invites = [await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区", "5号台区"], name=f"经理{i:02d}",
        now=services.clock.now(), ttl=timedelta(days=7)) for i in range(20)]
    users = [TgUser(fake_api, 1000 + i, f"经理{i:02d}") for i in range(20)]

    async def whole_form(user: TgUser, i: int) -> None:
        fake_api.user_sends(user.chat_id, f"/start {invites[i].code}")
        await _until(user, L("menu.welcome", name=user.name), 0)
        steps: list[tuple[str | None, str, str]] = [
            (None, f"巡视 3号台区 昨天下午3点 并发内容{i}", L("form.worklog.problems")),
            ("跳过", "", L("form.worklog.photos")),
            ("跳过", "", L("form.worklog.location")),
            ("跳过", "", L("form.summary_title", title="工作日志")),
            ("保存", "", "✅ 已保存工作日志 #"),
        ]
        for button, text, expected in steps:
            n = len(user.sent)
            if button is None:
                fake_api.user_sends(user.chat_id, text)
            else:
                fake_api.press(user.chat_id, button)
            await _until(user, expected, n)

    await asyncio.gather(*(whole_form(u, i) for i, u in enumerate(users)))
    rows = await worklog_rows(services)
    assert len(rows) == 20
    assert sorted(r["content"] for r in rows) == sorted(f"并发内容{i}" for i in range(20))
    assert sorted(r["user_name"] for r in rows) == sorted(u.name for u in users)
    assert await open_drafts(services) == 0
    for i, user in enumerate(users):
        [mine] = [r for r in rows if r["user_name"] == user.name]
        assert mine["content"] == f"并发内容{i}"
        assert L("form.worklog.saved", id=mine["id"], when=YESTERDAY_3PM, area="3号台区",
                 items="巡视") == body(user.last)


async def test_each_users_burst_of_messages_is_answered_in_order(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    users = []
    for i in range(20):  # registered in-process: this test is about the order of replies
        await make_user(services, f"用户{i:02d}", channel="telegram", external_id=str(2000 + i))
        users.append(TgUser(fake_api, 2000 + i, f"用户{i:02d}"))
    starts = {u.chat_id: len(u.sent) for u in users}
    # Everyone types the whole form at once, without waiting for any reply.
    for i, u in enumerate(users):
        for text in (f"巡视 3号台区 昨天下午3点 连发{i}", "跳过", "跳过", "跳过", "保存"):
            fake_api.user_sends(u.chat_id, text)
    await asyncio.gather(*(_until(u, "✅ 已保存工作日志 #", starts[u.chat_id], 30)
                           for u in users))
    await asyncio.sleep(0.2)  # anything extra would show up now
    for u in users:
        got = [body(m) for m in u.sent[starts[u.chat_id]:]]
        assert len(got) == 5, got
        assert got[0].endswith(L("form.worklog.problems"))
        assert got[1].startswith(L("form.worklog.photos"))
        assert got[2].startswith(L("form.worklog.location"))
        assert got[3].startswith(L("form.summary_title", title="工作日志"))
        assert got[4].startswith("✅ 已保存工作日志 #")
    rows = await worklog_rows(services)
    assert sorted(r["content"] for r in rows) == sorted(f"连发{i}" for i in range(20))


@pytest.mark.sqlite_only("SQLite's one write lock, held by a second connection; PostgreSQL "
                         "locks rows, so a long import holds no one else's writes")
async def test_a_locked_database_stalls_no_one_over_telegram(
        zhang: TgUser, channel: TelegramChannel, fake_api: FakeBotAPI, services: Services,
        settings: Settings) -> None:
    """A CLI import (here: a second connection) holds the write lock; 张三's answer waits for
    it briefly and is kept, 李四's /help is answered at once."""
    import sqlite3
    import time

    li = await register(fake_api, services, 43, "李四")
    await at_content_step(zhang)
    other = sqlite3.connect(settings.db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        n = len(zhang.sent)
        fake_api.user_sends(zhang.chat_id, "更换表箱")
        await asyncio.sleep(0.1)  # 张三's step is waiting for the lock now
        start = time.monotonic()
        r = await li.say("/help")
        assert time.monotonic() - start < 1.0 and body(r[0]).startswith("📖")
        await _until(zhang, L("form.worklog.problems"), n)  # the answer was taken
    finally:
        other.execute("ROLLBACK")
        other.close()
    for _ in range(100):  # ... and is in the file once the lock is free
        if services.conversations.held == 0:
            break
        await asyncio.sleep(0.05)
    with sqlite3.connect(settings.db_path) as conn:
        state = conn.execute("SELECT state FROM conversations WHERE user_id = 1").fetchone()[0]
    assert '"content": "更换表箱"' in state


# --- more of what a real chat does ----------------------------------------------------------
async def test_captioned_photo_at_the_content_step_answers_it(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    await at_content_step(zhang)
    r = await zhang._respond(lambda: fake_api.user_sends_photo(42, "ph-cap", caption="更换表箱"))
    assert len(r) == 1  # one event: the photo, its caption answering the step
    assert body(r[0]).startswith(L("form.photo_kept", count=1) + "\n")
    assert L("form.worklog.problems") in body(r[0])
    values = await values_of(services)
    assert values["photos"] == ["telegram:ph-cap"] and values["content"] == "更换表箱"


async def test_captioned_photo_at_the_photo_step_is_not_refused(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    await zhang.press("跳过")
    r = await zhang._respond(lambda: fake_api.user_sends_photo(42, "ph-cap", caption="表箱外观"))
    assert body(r[0]) == L("form.photo_received", count=1)
    assert (await values_of(services))["photos"] == ["telegram:ph-cap"]
    assert L("form.expect_photo") not in texts(r)


async def test_group_chats_get_nothing(zhang: TgUser, fake_api: FakeBotAPI,
                                       services: Services) -> None:
    fake_api.bot().chat(-100).user_id = 42  # 张三 himself, in a group with the bot
    fake_api.user_sends(-100, "/logs")
    fake_api.user_sends(-100, "记录巡视 3号台区")
    fake_api.user_sends(-100, "/start")
    r = await zhang.say("/help")  # handled after the group messages: they had their turn
    assert body(r[0]).startswith(L("help.body"))
    assert fake_api.sent(-100) == []
    assert await open_drafts(services) == 0


async def test_save_pressed_twice_saves_once(zhang: TgUser, fake_api: FakeBotAPI,
                                             services: Services) -> None:
    await to_summary_with_prefill(zhang)
    summary_msg = zhang.last
    n = len(zhang.sent)
    data = next(d for d in callback_data(summary_msg) if d.endswith("|save|"))
    fake_api.user_presses(42, summary_msg["message_id"], data)
    fake_api.user_presses(42, summary_msg["message_id"], data)
    await _until(zhang, L("form.already_saved_long", form="工作日志", id=1), n)
    [row] = await worklog_rows(services)
    assert [body(m) for m in zhang.sent[n:]] == [
        L("form.worklog.saved", id=row["id"], when=YESTERDAY_3PM, area="3号台区", items="巡视"),
        L("form.already_saved_long", form="工作日志", id=row["id"])]
    assert [a["text"] for a in zhang.answers()[-2:]] == [L("form.saved_toast"),
                                                         L("form.already_saved", id=row["id"])]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_rate_limited_reply_is_retried_and_arrives(zhang: TgUser,
                                                         fake_api: FakeBotAPI) -> None:
    fake_api.fail_next("sendMessage", "429", retry_after=1)
    r = await zhang.say("/log", timeout=10, idle=0.3)
    assert [body(m) for m in r] == [body(zhang.last)]
    assert body(r[0]).startswith(L("form.worklog.items"))
    assert len(fake_api.calls_to("sendMessage", ok=False)) == 1


async def test_transient_bad_gateway_does_not_lose_the_reply(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    await to_summary_with_prefill(zhang)
    n = len(zhang.sent)
    fake_api.fail_next("sendMessage", "502")
    fake_api.press(42, "保存")
    await _until(zhang, "✅ 已保存工作日志 #", n, timeout=3)


async def _calls(fake: FakeBotAPI, method: str, count: int, timeout: float = 5.0) -> None:
    """Wait until `method` was called `count` times (failed calls touch no chat to wait on)."""
    async with asyncio.timeout(timeout):
        while len(fake.calls_to(method)) < count:
            await asyncio.sleep(0.01)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real back-off (0.5 s .. 4 s) with the same number of tries, in milliseconds."""
    monkeypatch.setattr("bot.channels.telegram.NETWORK_RETRIES", (0.01, 0.01, 0.01, 0.01))


async def test_failed_button_removal_never_costs_the_saved_confirmation(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services, quick_retries: None) -> None:
    """issue #8 item 4: every try of the cosmetic edit fails, the confirmation still arrives;
    pressing 保存 again says what was saved, not that the button is stale."""
    await to_summary_with_prefill(zhang)
    summary_msg, n = zhang.last, len(zhang.sent)
    fake_api.fail_next("editMessageReplyMarkup", "502", count=5)  # the first try + 4 retries
    fake_api.press(42, "保存")
    confirmation = await _until(zhang, "✅ 已保存工作日志 #", n, timeout=5)
    [row] = await worklog_rows(services)
    assert body(confirmation) == L("form.worklog.saved", id=row["id"], when=YESTERDAY_3PM,
                                   area="3号台区", items="巡视")
    await _calls(fake_api, "editMessageReplyMarkup", 5)  # it did try, after the reply

    r = await zhang.press("保存", message=summary_msg)  # the buttons are still there
    assert [body(m) for m in r if m["message_id"] != summary_msg["message_id"]] == [
        L("form.already_saved_long", form="工作日志", id=row["id"])]
    assert zhang.answers()[-1]["text"] == L("form.already_saved", id=row["id"]) == "已保存（#1）"
    assert len(await worklog_rows(services)) == 1


async def test_button_removal_is_retried_after_a_bad_gateway(
        zhang: TgUser, fake_api: FakeBotAPI, quick_retries: None) -> None:
    await to_summary_with_prefill(zhang)
    summary_msg, n = zhang.last, len(zhang.sent)
    fake_api.fail_next("editMessageReplyMarkup", "502")
    fake_api.press(42, "保存")
    await _until(zhang, "✅ 已保存工作日志 #", n, timeout=5)
    await fake_api.wait_for(42, predicate=lambda _: not has_keyboard(
        fake_api.bot().chat(42).bot_messages[summary_msg["message_id"]]), timeout=5)


async def test_saved_form_is_remembered_for_a_day_only(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services, clock: FakeClock) -> None:
    await to_summary_with_prefill(zhang)
    summary_msg = zhang.last
    data = next(d for d in callback_data(summary_msg) if d.endswith("|save|"))
    await zhang.press("保存")
    clock.advance(hours=23)
    r = await zhang.tap(summary_msg["message_id"], data)
    assert L("form.already_saved_long", form="工作日志", id=1) in texts(r)
    clock.advance(hours=2)
    r = await zhang.tap(summary_msg["message_id"], data)
    assert L("button.stale_long") in texts(r)
    assert zhang.answers()[-1]["text"] == L("button.stale")


# A poll as an older self-hosted Bot API server sends it: options without the Bot API 9.6
# `persistent_id`, which PTB 22.8 requires (Update.de_json raises TypeError).
OLD_SERVER_POLL = {"id": "p1", "question": "机密：欠费名单", "total_voter_count": 0,
                   "options": [{"text": "王五家", "voter_count": 0}],
                   "is_closed": False, "is_anonymous": True, "type": "regular",
                   "allows_multiple_answers": False}


async def test_an_update_ptb_cannot_parse_is_skipped_and_kept_without_its_text(
        settings: Settings, services: Services, fake_api: FakeBotAPI,
        caplog: pytest.LogCaptureFixture) -> None:
    """issue #8 item 3: the bad update no longer wedges the bot (for anyone, across restarts),
    is recorded redacted after one retry, and its text reaches no log."""
    caplog.set_level(logging.DEBUG)
    channel = await start_channel(services, settings, fake_api)
    zhang = await register(fake_api, services, 42, "张三")
    polls = len(fake_api.calls_to("getUpdates"))
    bad = fake_api.bot()._queue_user_message(42, {"poll": OLD_SERVER_POLL}, None, None, None)
    try:
        r = await zhang.say("/help", timeout=5)  # queued behind the poll
        assert body(r[0]).startswith(L("help.body"))
        li = await register(fake_api, services, 43, "李四")
        assert L("menu.welcome", name="李四") in texts(li.greeting)
        # One retry, then skipped: a handful of polls, not hundreds a second.
        assert len(fake_api.calls_to("getUpdates")) - polls < 10
    finally:
        await channel.stop()
    [row] = await DeadUpdates(services.db).all("telegram")
    assert row["update_id"] == bad
    assert row["error"].startswith("TypeError: `persistent_id` is a required argument")
    shape = json.loads(row["shape"])
    assert shape["message"]["poll"]["question"] == "<str:7>"
    assert shape["message"]["poll"]["options"] == [{"text": "<str:3>", "voter_count": 0}]
    assert shape["message"]["chat"]["id"] == 42 and shape["message"]["chat"]["type"] == "private"
    assert "欠费" not in row["shape"] and "王五" not in row["shape"]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert f"update {bad} could not be read (TypeError)" in logged
    assert "欠费" not in logged and "王五" not in logged and "欠费" not in caplog.text

    # Restarted, the bot does not meet it again: it answers at once, nothing is added.
    channel2 = await start_channel(services, settings, fake_api)
    try:
        r = await zhang.say("/help", timeout=5)
        assert body(r[0]).startswith(L("help.body"))
    finally:
        await channel2.stop()
    assert len(await DeadUpdates(services.db).all("telegram")) == 1


def _update(update_id: int, **content: object) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1, "chat": {"id": 42, "type": "private"}, **content}}


async def test_a_bad_update_is_read_once_more_before_it_is_skipped() -> None:
    kept: list[tuple[int, str]] = []

    async def dead_letter(update_id: int, raw: dict, exc: Exception) -> None:
        kept.append((update_id, type(exc).__name__))
        if update_id == 9:
            raise OSError("disk full")

    request = ScreenedUpdates(dead_letter)
    screen = request._screen
    good, bad, after = _update(1, text="a"), _update(2, poll=OLD_SERVER_POLL), _update(3, text="b")
    assert await screen([good, bad, after]) == [good]  # confirm only up to it; it comes back
    assert kept == []
    assert await screen([bad, after]) == [{"update_id": 2}, after]  # skipped, offset moves on
    assert kept == [(2, "TypeError")]
    # Read on its retry: delivered, not kept.
    fixed_options = [{"text": "是", "voter_count": 0, "persistent_id": "o1"}]
    fixed = _update(4, poll={**OLD_SERVER_POLL, "options": fixed_options,
                             "allows_revoting": False, "members_only": False})
    assert await screen([_update(4, poll=OLD_SERVER_POLL)]) == []
    assert await screen([fixed]) == [fixed]
    # The dead-letter table failing does not wedge the bot either.
    assert await screen([_update(9, poll=OLD_SERVER_POLL)]) == []
    assert await screen([_update(9, poll=OLD_SERVER_POLL)]) == [{"update_id": 9}]
    assert kept == [(2, "TypeError"), (9, "TypeError")]
    await request.shutdown()

    shape = redacted({"message": {"text": "机密", "location": {"latitude": 31.8},
                                  "document": {"mime_type": "image/heic", "file_size": 9}}})
    assert shape == {"message": {"text": "<str:2>", "location": {"latitude": "<float>"},
                                 "document": {"mime_type": "image/heic", "file_size": 9}}}


def test_a_malformed_getupdates_answer_is_not_logged_whole(
        caplog: pytest.LogCaptureFixture) -> None:
    cut_short = json.dumps({"ok": True, "result": [_update(1, text="机密：欠费名单")]})[:-5]
    with pytest.raises(TelegramError):
        ScreenedUpdates.parse_json_payload(cut_short.encode())
    assert "getUpdates answer is not JSON" in caplog.text and "欠费" not in caplog.text


async def test_an_edited_message_says_edits_are_not_applied_and_how_to_change(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    """issue #8 item 15: an edit was silently ignored; now the user hears why and what to do."""
    await at_content_step(zhang)
    await zhang.say("更换表箱")
    answered = zhang.my_last_message_id
    r = await zhang.edit(answered, "更换电表箱")
    assert [body(m) for m in r] == ["\n".join([L("media.edit_in_form"),
                                               L("form.worklog.problems")])]
    assert "⬅️ 上一步" in labels(r[0])
    assert (await values_of(services))["content"] == "更换表箱"  # the edit changed nothing

    # An edit into a command is not run as one: the form stays open.
    r = await zhang.edit(answered, "/cancel")
    assert body(r[0]).startswith(L("media.edit_in_form"))
    assert await open_drafts(services) == 1

    # An edit of a message older than a form can stay open is ignored: no noise.
    fake_api.bot().user_edits(42, answered, "更换表箱（旧）", later=31 * 60)
    r = await zhang.say("/help")
    assert len(r) == 2 and body(r[0]).startswith(L("help.body"))

    # No form open: say the edit is not processed, with the menu.
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    r = await zhang.edit(answered, "更换电表箱")
    assert [body(m) for m in r] == [L("media.edit_no_form")] and has_keyboard(r[0])
    assert await worklog_rows(services) == []


async def test_edit_notice_is_in_the_users_language(zhang: TgUser) -> None:
    await zhang.say("/lang en")
    await zhang.say("hello")
    r = await zhang.edit(zhang.my_last_message_id, "hello again")
    assert [body(m) for m in r] == [L("media.edit_no_form", "en")]


async def test_photos_sent_as_files_are_accepted_as_photos_and_shown_again(
        zhang: TgUser, fake_api: FakeBotAPI, services: Services) -> None:
    """issue #8 item 15: an image sent as a document (uncompressed JPEG/PNG, iPhone HEIC) was
    refused at the photo step and lost; it is a photo everywhere a photo is accepted."""
    def image_file(name: str, mime: str, caption: str | None = None) -> Callable[[], int]:
        content = b"\xff\xd8\xff" + name.encode()
        return lambda: fake_api.bot().user_sends_document(
            42, content, name, mime, file_id=f"doc-{name}", caption=caption)

    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    await zhang.press("跳过")
    for n, (name, mime) in enumerate([("IMG_1.JPG", "image/jpeg"),
                                      ("IMG_2.HEIC", "image/heic")], start=1):
        r = await zhang._respond(image_file(name, mime))
        assert [body(m) for m in r] == [L("form.photo_received", count=n)]
    r = await zhang._respond(lambda: fake_api.user_sends_document(42, b"%PDF", "a.pdf",
                                                                  "application/pdf"))
    assert not_read("a.pdf") in body(r[0])  # other files are still not photos
    await zhang.press("完成")
    r = await zhang._respond(image_file("pole.png", "image/png"))  # at another step: kept
    assert body(r[0]) == "\n".join([L("form.photo_kept", count=3), L("form.worklog.location")])
    await zhang.press("跳过")
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["photos"] == ["telegram:doc-IMG_1.JPG", "telegram:doc-IMG_2.HEIC",
                             "telegram:doc-pole.png"]

    # Viewing the entry sends them back; a file's id is a document's, so as documents. They
    # follow the card: on a loaded machine later than the harness's quiet window, so waited for.
    before = len(fake_api.bot().chat(42).sent)
    await zhang.press("查看")

    def files(sent: list[dict[str, Any]]) -> list[str]:
        return [m["document"]["file_id"] for m in sent[before:] if "document" in m]

    sent = await fake_api.wait_for(42, predicate=lambda sent: len(files(sent)) >= 3)
    assert files(sent) == ["doc-IMG_1.JPG", "doc-IMG_2.HEIC", "doc-pole.png"]

    # Outside a form an image file gets the same answer as a photo.
    r = await zhang._respond(image_file("late.jpg", "image/jpeg"))
    assert body(r[0]) == L("media.loose_photo", count=1, minutes=10)


async def test_chat_menu_is_set_despite_a_bad_gateway(
        zhang: TgUser, fake_api: FakeBotAPI, quick_retries: None) -> None:
    fake_api.fail_next("setMyCommands", "502")
    r = await zhang.say("/lang en")
    assert body(r[0]) == L("lang.set", "en")
    english = [{"command": c, "description": d} for c, d in command_descriptions("en")]
    async with asyncio.timeout(3):  # set after the reply, so wait for it
        while fake_api.my_commands({"type": "chat", "chat_id": 42}) != english:
            await asyncio.sleep(0.01)
    assert len(fake_api.calls_to("setMyCommands", ok=False)) == 1
