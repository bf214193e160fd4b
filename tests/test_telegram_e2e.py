"""End to end over Telegram: the real PTB Application (long polling) of bot/channels/telegram.py
against the loopback fake Bot API, on a real SQLite file and a fake clock.

Every test talks to the bot as a user would (text, button presses, photos, locations) and
checks the exact texts and buttons the user sees and what ended up in the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.models import Role
from bot.services import Services
from bot.storage.worklogs import NewWorkLog
from tests.conftest import T0
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import (
    L,
    TgUser,
    body,
    has_keyboard,
    labels,
    open_drafts,
    register,
    start_channel,
    texts,
)

pytestmark = pytest.mark.timeout(60)

NOW_SHOWN = "2026-11-27 周五 10:30"  # T0 as the bot echoes it
YESTERDAY_3PM = "2026-11-26 周四 15:00"
CMD_LIST = "/log /logs /cancel /help /lang"


@pytest.fixture
async def channel(services: Services, settings: Settings,
                  fake_api: FakeBotAPI) -> AsyncIterator[TelegramChannel]:
    ch = await start_channel(services, settings, fake_api)
    yield ch
    await ch.stop()


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
    assert labels(zhang.greeting[-1]) == ["📝 记录日志", "📋 我的日志", "❓ 帮助"]

    zh = fake_api.my_commands(None, "zh")
    en = fake_api.my_commands(None, "en")
    assert [c["command"] for c in zh] == ["log", "logs", "cancel", "help", "lang"]
    assert zh[0]["description"] == L("cmd.log")
    assert [c["command"] for c in en] == ["log", "logs", "cancel", "help", "lang"]
    assert en[0]["description"] == L("cmd.log", "en")
    assert fake_api.my_commands() == zh  # the default menu is the configured locale's

    # The chat identity is bound to the invited user, by Telegram user id.
    user = await services.people.by_identity("telegram", "42")
    assert user is not None and user.name == "张三" and user.role is Role.MANAGER

    # /start again: already registered, greeted, the code is not needed.
    again = texts(await zhang.say("/start"))
    assert L("menu.hello", name="张三") in again


async def test_strangers_get_how_to_get_a_code_and_no_data(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    await register(fake_api, services, 42, "张三")
    zhang_id = (await services.people.by_identity("telegram", "42")).id  # type: ignore[union-attr]
    await services.worklogs.add(
        (await services.people.user(zhang_id)),  # type: ignore[arg-type]
        NewWorkLog(area_id=1, items=("patrol",), occurred_at=T0, has_time=True,
                   content="机密内容"), T0)
    stranger = TgUser(fake_api, 777, "路人")
    for text in ("你好", "我的日志", "/logs", "/log", "记录巡视 3号台区", "/start"):
        reply = await stranger.say(text)
        assert texts(reply) == L("start.need_code"), text
        assert not any(has_keyboard(m) for m in reply)
    wrong = await stranger.say("/start WRONGCODE123")
    assert texts(wrong) == L("start.code_unknown")
    assert "机密内容" not in texts(stranger.sent) and "3号台区" not in texts(stranger.sent[:-1])
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
    await zhang.say("更换3号杆表箱锁具")
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
    assert labels(zhang.last) == ["✅ 保存", "✏️ 修改", "⬅️ 上一步", "✖️ 取消"]

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
    for m in (items_msg, area_msg, time_[0], photos_prompt[0]):
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
    assert texts(await zhang.say("/cancel")) == L("form.cancelled", form="工作日志")

    r = await zhang.say("巡视 3号台区 昨天下午3点 2号杆拉线松动")
    assert body(r[0]) == "\n".join([
        L("form.prefilled", title="工作日志",
          values=f"工作项目 巡视 · 台区 3号台区 · 时间 {YESTERDAY_3PM} · 工作内容 2号杆拉线松动"),
        L("form.worklog.problems")])
    assert await zhang.say("/cancel")

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
    assert draft is not None and "area" not in draft.state["values"]
    assert draft.state["values"]["items"] == ["patrol"]


async def test_prefill_bare_area_number_suggests_the_area(zhang: TgUser,
                                                          services: Services) -> None:
    r = await zhang.say("记录巡视 3号")
    assert "⚠️ " + L("form.did_you_mean", text="3号", options="3号台区") in body(r[0])
    assert labels(r[0])[:2] == ["3号台区", "5号台区"]
    draft = await services.conversations.get(1)
    assert draft is not None and "area" not in draft.state["values"]
    # Typed at the area step too: suggested, never silently picked.
    r = await zhang.say("5号")
    assert "⚠️ " + L("form.did_you_mean", text="5号", options="5号台区") in body(r[0])
    r = await zhang.press("3号台区")
    assert L("form.worklog.time") in body(r[-1])
