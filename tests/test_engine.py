"""The form engine through the core, as any channel drives it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.events import parse_callback
from bot.features.outages import parse_end
from bot.forms.fields import FormView, Invalid
from bot.i18n import t
from bot.models import Role, User
from bot.services import Ctx, Services
from tests.conftest import Chat, at, make_user

pytestmark = pytest.mark.both_backends  # form state on SQLite and on PostgreSQL (issue #11)


async def _rows(services: Services, sql: str, *params: object) -> list[dict[str, object]]:
    return [dict(r) for r in await services.db.fetchall(sql, params)]


async def test_prefill_asks_only_for_what_is_missing(zhang: Chat) -> None:
    await zhang.say("记录巡视 3号台区")
    assert "已填好：工作项目 巡视 · 台区 3号台区" in zhang.text
    assert "什么时候做的" in zhang.text
    await zhang.press("现在")
    assert "做了什么" in zhang.text


async def test_whole_form_saves_once_with_everything(zhang: Chat, services: Services) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 2号杆拉线松动")
    assert "发现了什么问题" in zhang.text  # items, area, time and content were all read
    await zhang.say("拉线需紧固")
    await zhang.photo("test:p1")
    await zhang.photo("test:p2")
    await zhang.press("完成")
    await zhang.location(31.82, 117.23)
    assert "时间：2026-11-26 周四 15:00" in zhang.text
    assert "照片：2 张" in zhang.text
    save = zhang.last
    await zhang.press("保存")
    assert "已保存工作日志 #1" in zhang.text
    rows = await _rows(services, "SELECT * FROM worklogs")
    assert len(rows) == 1
    row = rows[0]
    assert row["content"] == "2号杆拉线松动" and row["problems"] == "拉线需紧固"
    assert row["occurred_at"] == "2026-11-26T07:00:00+00:00"  # stored in UTC
    assert row["latitude"] == 31.82
    assert len(await _rows(services, "SELECT * FROM worklog_photos")) == 2
    # The same confirm delivered twice (a re-sent update) saves nothing more.
    zhang.last = save
    await zhang.press("保存")
    assert zhang.text == t("zh_CN", "form.already_saved_long", form="工作日志", id=row["id"])
    assert len(await _rows(services, "SELECT * FROM worklogs")) == 1


async def test_back_skip_and_edit_at_summary(zhang: Chat, services: Services) -> None:
    await zhang.say("/log")
    assert "哪些工作" in zhang.text
    out = await zhang.press("巡视")
    assert out.edit is not None and "☑ 巡视" in str(out.edit.buttons)
    zhang.last = out
    await zhang.press("完成")
    await zhang.press("5号台区")
    await zhang.press("上一步")
    assert "在哪个台区" in zhang.text and "当前：5号台区" in zhang.text
    await zhang.press("保持不变")
    await zhang.say("今天上午9点半")
    await zhang.say("检查表箱")
    await zhang.say("跳过")
    await zhang.say("跳过")
    await zhang.say("跳过")
    assert "请确认工作日志" in zhang.text and "5号台区" in zhang.text
    await zhang.press("修改")
    await zhang.press("台区")
    await zhang.press("3号台区")
    assert "请确认工作日志" in zhang.text and "台区：3号台区" in zhang.text
    await zhang.press("保存")
    row = (await _rows(services, "SELECT a.name FROM worklogs w JOIN areas a ON a.id=w.area_id"))
    assert row == [{"name": "3号台区"}]


async def test_first_step_back_and_required_skip(zhang: Chat) -> None:
    await zhang.say("/log")
    await zhang.say("上一步")
    assert "已经是第一步了" in zhang.text
    await zhang.say("巡视")
    await zhang.say("跳过")
    assert "必填" in zhang.text and "在哪个台区" in zhang.text


async def test_bad_answers_reprompt_and_keep_values(zhang: Chat, services: Services) -> None:
    await zhang.say("记录走访 5号台区")
    await zhang.say("明早8点")
    assert "还没到" in zhang.text and "什么时候" in zhang.text
    await zhang.say("啊啊啊")
    assert "没看懂时间「啊啊啊」" in zhang.text
    await zhang.say("   ")
    assert "没有收到内容" in zhang.text
    await zhang.say("x" * 5000)
    assert "5000 字" in zhang.text and "2000" in zhang.text
    await zhang.say("刚才")
    await zhang.say("'; DROP TABLE worklogs; -- <b>x</b> *_[ 😀")
    await zhang.say("无")
    await zhang.say("跳过")
    await zhang.say("跳过")
    assert "工作内容：'; DROP TABLE worklogs; -- <b>x</b> *_[ 😀" in zhang.text
    assert "台区：5号台区" in zhang.text
    await zhang.say("保存")
    rows = await _rows(services, "SELECT content FROM worklogs")
    assert rows == [{"content": "'; DROP TABLE worklogs; -- <b>x</b> *_[ 😀"}]


async def test_unknown_and_misspelt_areas_are_never_guessed(zhang: Chat,
                                                          services: Services) -> None:
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    await zhang.say("巡视 9号台区")  # another team's area: not yours, and nothing leaks
    assert "「9号台区」不是你负责的台区" in zhang.text and "3号台区、5号台区" in zhang.text
    assert "在哪个台区" in zhang.text
    await zhang.say("号台区")  # part of two areas: both offered, neither taken
    assert "你是不是要找：3号台区、5号台区" in zhang.text and "在哪个台区" in zhang.text
    await zhang.say("3号")  # part of one area only: taken at once (#15)
    assert "什么时候" in zhang.text


async def test_photo_and_location_out_of_step_are_kept(zhang: Chat) -> None:
    await zhang.say("记录巡视 3号台区")
    await zhang.photo("test:early")
    assert "照片已收到（共 1 张）" in zhang.text and "什么时候" in zhang.text
    await zhang.location(1.0, 2.0)
    assert "位置已收到" in zhang.text
    await zhang.press("现在")
    await zhang.say("巡视")
    await zhang.say("跳过")  # photos and location were given already: straight to the summary
    assert "照片：1 张" in zhang.text and "位置：1.00000, 2.00000" in zhang.text


async def test_cancel_button_and_slash_cancel_both_confirm(zhang: Chat,
                                                            services: Services) -> None:
    await zhang.say("记录巡视 3号台区")
    await zhang.press("取消")
    assert "确定放弃" in zhang.text
    await zhang.press("继续填写")
    assert "什么时候" in zhang.text
    await zhang.say("/cancel")  # #15: /cancel asks first too, like the ✖️ button
    assert "确定放弃" in zhang.text
    assert await services.conversations.get(1) is not None
    await zhang.press("确定放弃")
    assert "已取消工作日志" in zhang.text
    assert await services.conversations.get(1) is None
    await zhang.say("/cancel")
    assert "没有正在填写" in zhang.text


async def test_help_mid_form_reasks(zhang: Chat) -> None:
    await zhang.say("记录巡视 3号台区")
    await zhang.say("/help")
    assert "使用帮助" in zhang.text and "什么时候做的" in zhang.text
    await zhang.say("/nosuch")
    assert "没有 /nosuch 这个命令" in zhang.text and "什么时候做的" in zhang.text


async def test_new_intent_during_form_never_overwrites(zhang: Chat, services: Services) -> None:
    await zhang.say("记录巡视 3号台区")
    await zhang.press("现在")
    await zhang.say("/log")
    assert "没填完的工作日志" in zhang.text
    await zhang.press("继续填写")
    assert "做了什么" in zhang.text
    await zhang.say("/log")
    await zhang.press("放弃并新建")
    assert "已放弃" in zhang.text and "哪些工作" in zhang.text


async def test_idle_form_is_parked_and_the_late_answer_kept(
        zhang: Chat, services: Services, clock: FakeClock) -> None:
    await zhang.say("记录巡视 3号台区")
    old = zhang.last
    clock.advance(minutes=31)
    await zhang.say("刚才")
    assert "已暂停" in zhang.text and "已填：工作项目 巡视 · 台区 3号台区" in zhang.text
    assert "「刚才」会作为「时间」的回答" in zhang.text
    await zhang.say("/logs")  # a request while asked: held instead, and said so
    assert "「/logs」会在你选择后处理" in zhang.text
    zhang.last = old
    await zhang.press("现在")  # a button of the parked form: held, the question again
    assert "继续后会接着处理你刚点的按钮" in zhang.text and zhang.last.toast
    await zhang.say("继续")
    assert "做了什么" in zhang.text  # the held 现在 answered 时间
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values["time"] and draft.state.parked is None
    clock.advance(minutes=20)  # taken up again: the idle clock restarted
    await zhang.say("更换表箱")
    assert "发现了什么问题" in zhang.text


async def test_parked_form_discard_handles_the_held_request(
        zhang: Chat, services: Services, clock: FakeClock) -> None:
    await zhang.say("记录巡视 3号台区")
    clock.advance(hours=5)
    await zhang.say("/log")
    assert "「/log」会在你选择后处理" in zhang.text
    await zhang.press("放弃")
    assert "已取消工作日志" in zhang.text and "哪些工作" in zhang.text  # /log opened afresh
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values == {}


async def test_parked_form_typed_cancel_asks_first(
        zhang: Chat, services: Services, clock: FakeClock) -> None:
    await zhang.say("记录巡视 3号台区")
    clock.advance(minutes=45)
    await zhang.say("不填了")  # a typed cancel on a parked form asks, like the ✖️ button
    assert "确定放弃这条工作日志" in zhang.text
    assert await services.conversations.get(1) is not None
    await zhang.press("继续填写")
    assert "什么时候" in zhang.text
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    assert "已取消工作日志" in zhang.text
    assert await services.conversations.get(1) is None


async def test_parked_photo_is_kept_on_continue(zhang: Chat, services: Services,
                                                clock: FakeClock) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    clock.advance(minutes=45)
    await zhang.photo("test:p1")
    assert "照片会附到这条工作日志里" in zhang.text
    await zhang.press("继续填写")
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.values["photos"] == ["test:test:p1"]


async def test_parked_form_without_photos_does_not_promise_to_keep_one(
        zhang: Chat, services: Services, clock: FakeClock) -> None:
    await zhang.say("登记特殊客户")
    clock.advance(minutes=45)
    await zhang.photo("test:p1")
    assert "没有照片这一项，这张照片没有保存" in zhang.text
    assert "照片会附到" not in zhang.text
    await zhang.press("继续填写")
    draft = await services.conversations.get(1)
    assert draft is not None and "test:test:p1" not in str(draft.state.values)


async def test_old_park_question_after_continuing_is_safe(
        zhang: Chat, services: Services, clock: FakeClock) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    for _ in range(3):
        await zhang.say("跳过")
    clock.advance(hours=1)
    await zhang.say("你好")
    question = zhang.last
    await zhang.press("继续填写")
    assert "请确认工作日志" in zhang.text
    zhang.last = question
    await zhang.press("放弃")  # the old question's 放弃 on the open form: asks first
    assert "确定放弃这条工作日志（" in zhang.text
    assert await services.conversations.get(1) is not None
    zhang.last = question
    await zhang.press("保存")  # ... and its 保存 saves
    assert "已保存工作日志" in zhang.text


async def test_save_pressed_again_on_the_park_question_says_it_was_saved(
        zhang: Chat, services: Services, clock: FakeClock) -> None:
    """The park question's 保存 saved the form; its confirmation may be lost on the network
    like any other, so a second press says what was saved, as the summary's 保存 does."""
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    for _ in range(3):
        await zhang.say("跳过")
    clock.advance(minutes=40)
    await zhang.say("你好")
    question = zhang.last
    await zhang.press("保存")
    assert "已保存工作日志 #1" in zhang.text
    zhang.last = question
    await zhang.press("保存")
    assert "这条工作日志已保存（#1）" in zhang.text and "失效" not in zhang.text
    assert zhang.last is not None and zhang.last.toast == "已保存（#1）"
    assert len(await _rows(services, "SELECT id FROM worklogs")) == 1


async def test_parked_form_gone_after_the_window(zhang: Chat, services: Services,
                                                 clock: FakeClock) -> None:
    services.settings.form_park_hours = 2
    await zhang.say("记录巡视 3号台区")
    old = zhang.last
    clock.advance(minutes=30 + 2 * 60 + 1)
    zhang.last = old
    await zhang.press("现在")
    assert "暂停超过 2 小时，已放弃（没有保存）" in zhang.text and "失效" in zhang.text
    assert await services.conversations.get(1) is None


async def test_state_survives_a_restart(services: Services, clock: FakeClock) -> None:
    await make_user(services, "张三")
    first = Chat(Assistant(services), "test", "张三")
    await first.say("记录巡视 3号台区")
    await first.press("现在")
    before_restart = first.last
    # A new core on the same database, as after a process restart.
    second = Chat(Assistant(services), "test", "张三")
    await second.say("更换3号表箱门锁")
    assert "发现了什么问题" in second.text
    second.last = before_restart
    await second.press("上一步")  # an old button of the still-open form works
    assert "做了什么" in second.text and "更换3号表箱门锁" in second.text


async def test_lead_picks_any_team_area_and_sees_team_logs(services: Services,
                                                           assistant: Assistant) -> None:
    await make_user(services, "张三", areas=("3号台区",))
    await make_user(services, "李四", areas=("7号台区",))
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    li = Chat(assistant, "test", "李四")
    await li.say("巡视 7号台区 刚才 清理通道")
    for _ in range(3):
        await li.say("跳过")
    await li.say("保存")
    zhao = Chat(assistant, "test", "赵六")
    await zhao.say("巡视 9号台区 刚才 别的班组")
    for _ in range(3):
        await zhao.say("跳过")
    await zhao.say("保存")
    lead = Chat(assistant, "test", "王班长")
    await lead.say("/logs")
    assert "班组日志（共 1 条" in lead.text and "李四" in lead.text and "9号台区" not in lead.text
    await lead.say("记录巡视 7号台区")
    assert "什么时候" in lead.text  # a lead logs in any area of the team
    zhang = Chat(assistant, "test", "张三")
    await zhang.say("我的日志")
    assert "还没有工作日志" in zhang.text
    buttons = [b.data for b in lead.last.replies[0].buttons[0]] if lead.last else []
    assert buttons
    # 张三 forging 李四's entry id, and 王班长 forging the other team's, both find nothing.
    await zhang.tap("-|log|1")
    assert "没有找到这条日志" in zhang.text
    await lead.tap("-|log|2")
    assert "没有找到这条日志" in lead.text
    await lead.tap("-|log|1")
    assert "工作日志 #1" in lead.text and "清理通道" in lead.text


async def test_strangers_see_nothing(assistant: Assistant, zhang: Chat) -> None:
    stranger = Chat(assistant, "test", "nobody")
    await stranger.say("我的日志")
    assert "邀请码" in stranger.text and "#" not in stranger.text
    await stranger.tap("-|log|1")
    assert "邀请码" in stranger.text
    await stranger.say("/start WRONGCODE1234")
    assert "邀请码不正确" in stranger.text


async def test_invite_codes_single_use_and_expire(services: Services, assistant: Assistant,
                                                  clock: FakeClock) -> None:
    from datetime import timedelta

    inv = await services.people.create_invite(role=Role.MANAGER, team="T", areas=["1号台区"],
                                              name=None, now=clock.now(), ttl=timedelta(days=7))
    a = Chat(assistant, "test", "a")
    await a.say(f"/start {inv.code.lower()}")  # codes are read case-insensitively
    assert "欢迎" in a.text and "1号台区" in a.text
    b = Chat(assistant, "test", "b")
    await b.say(f"/start {inv.code}")
    assert "已经用过" in b.text
    late = await services.people.create_invite(role=Role.LEAD, team="T", areas=[], name="L",
                                               now=clock.now(), ttl=timedelta(days=7))
    clock.advance(days=8)
    await b.say(f"/start {late.code}")
    assert "已过期" in b.text
    for _ in range(5):
        await b.say("/start AAAAAAAAAAAA")
    await b.say(f"/start {inv.code}")
    assert "次数太多" in b.text


async def test_language_switch(zhang: Chat) -> None:
    out = await zhang.say("/lang en")
    assert out.commands_changed and "English" in zhang.text
    await zhang.say("记录巡视 3号台区")
    assert "When was it" in zhang.text
    await zhang.say("/lang xx")
    assert "Usage: /lang" in zhang.text


async def test_callback_data_fits_telegram(zhang: Chat) -> None:
    await zhang.say("/log")
    assert zhang.last is not None
    for reply in zhang.last.replies:
        for row in reply.buttons:
            for b in row:
                assert len(b.data.encode()) <= 64 and parse_callback(b.data)


async def test_edit_a_saved_entry_keeps_who_and_when(zhang: Chat, services: Services,
                                                     clock: FakeClock) -> None:
    await zhang.say("巡视 3号台区 刚才 检查台区")
    for _ in range(3):
        await zhang.say("跳过")
    await zhang.say("保存")
    clock.advance(hours=2)
    await zhang.press("查看")
    assert "检查台区" in zhang.text and "修改于" not in zhang.text
    await zhang.press("修改")
    assert "修改工作日志 #1" in zhang.text and "请确认工作日志" in zhang.text
    await zhang.press("修改")
    await zhang.press("工作内容")
    assert "当前：检查台区" in zhang.text
    await zhang.say("检查台区并清理通道")
    await zhang.press("保存")
    assert "已更新工作日志 #1" in zhang.text
    rows = await _rows(services, "SELECT content, created_at, updated_at, updated_by "
                                 "FROM worklogs")
    assert rows == [{"content": "检查台区并清理通道", "created_at": "2026-11-27T02:30:00+00:00",
                     "updated_at": "2026-11-27T04:30:00+00:00", "updated_by": 1}]
    await zhang.tap("-|log|1")
    assert "修改于：2026-11-27 周五 12:30 · 张三" in zhang.text
    # Someone else's entry cannot be opened for editing by a forged button.
    await make_user(services, "李四", areas=("7号台区",))
    li = Chat(zhang.assistant, "test", "李四")
    await li.tap("-|logedit|1")
    assert "没有找到这条日志" in li.text


async def test_an_optional_value_can_be_cleared_when_editing(zhang: Chat,
                                                             services: Services) -> None:
    await zhang.say("巡视 3号台区 刚才 检查台区")
    await zhang.say("表箱门锁损坏")
    await zhang.say("跳过")
    await zhang.say("跳过")
    assert "发现问题：表箱门锁损坏" in zhang.text
    await zhang.press("修改")
    await zhang.press("发现问题")
    assert "当前：表箱门锁损坏" in zhang.text
    await zhang.press("清空")
    assert "发现问题：（无）" in zhang.text
    await zhang.press("保存")
    row = await services.db.fetchone("SELECT problems FROM worklogs")
    assert row is not None and row[0] is None


async def test_bare_hour_in_a_log_is_the_latest_past_one(zhang: Chat, clock: FakeClock,
                                                         services: Services) -> None:
    at(clock, 2026, 11, 27, 16, 20)
    await zhang.say("巡视 3号台区 3点 2号杆拉线松动")  # at 16:20 3点 is 15:00, not 03:00
    assert "时间 2026-11-27 周五 15:00" in zhang.text, zhang.text
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.say("巡视 3号台区")
    await zhang.say("4点")  # typed at the time step: 16:00 (04:00 is further back)
    await zhang.say("2号杆拉线松动")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    assert "时间：2026-11-27 周五 16:00" in zhang.text, zhang.text
    await zhang.press("保存")
    row = (await _rows(services, "SELECT occurred_at FROM worklogs"))[0]
    assert row["occurred_at"] == "2026-11-27T08:00:00+00:00"


async def test_spoken_log_sentences_open_the_log_prefilled(zhang: Chat,
                                                           services: Services) -> None:
    await zhang.say("今天巡视了3号台区")
    assert "已填好：工作项目 巡视 · 台区 3号台区 · 时间 2026-11-27 周五" in zhang.text, zhang.text
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.say("上午去3号台区巡视了")
    assert "已填好：工作项目 巡视 · 台区 3号台区 · 时间 2026-11-27 周五" in zhang.text, zhang.text
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.say("走访了5号台区王大爷家")
    assert "工作内容 王大爷家" in zhang.text, zhang.text
    await zhang.press("现在")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    row = (await _rows(services, "SELECT content FROM worklogs"))[0]
    assert row["content"] == "王大爷家"


async def test_photo_or_location_in_a_form_without_them_is_refused_plainly(
        zhang: Chat, services: Services) -> None:
    """The customer form has no photo or location field: nothing is kept out of sight."""
    await zhang.say("登记特殊客户 3号台区 李四")
    await zhang.photo("test:stray")
    assert "没有照片这一项，这张照片没有保存" in zhang.text, zhang.text
    assert "会附在" not in zhang.text and "户号" in zhang.text  # the step is asked again
    await zhang.location(31.82, 117.23)
    assert "没有位置这一项，这个位置没有保存" in zhang.text, zhang.text
    draft = await services.conversations.get(1)
    assert draft is not None
    assert not {"photos", "photo_notes", "location"} & set(draft.state.values)


async def test_a_parser_reads_earlier_answers_from_the_form_not_the_database(
        zhang: Chat, services: Services) -> None:
    """The outage end is checked against the start handed to the parser; no draft is read."""
    user = await services.people.user(1)
    assert user is not None
    ctx = Ctx(services, user, services.clock.now())
    start = FormView({"start": {"at": "2026-12-05T00:00:00+00:00", "has_time": True}})
    assert await services.conversations.get(1) is None  # nothing stored to read
    with pytest.raises(Invalid) as refused:
        await parse_end("12月4日17点", ctx, start)
    assert refused.value.key == "outage.end_before_start"
    assert (await parse_end("12月5日17点", ctx, start))["has_time"] is True


async def test_a_draft_saved_by_the_previous_version_opens_and_saves(
        zhang: Chat, services: Services) -> None:
    """The typed form state reads the untyped JSON the previous version stored, parked or not."""
    areas = {a.name: a.id for a in await services.people.areas_for(
        await _user(services))}
    old = {"values": {"items": ["patrol"], "area": str(areas["3号台区"]),
                      "time": {"at": "2026-11-30T01:00:00+00:00", "has_time": True}},
           "history": ["items", "area", "time"], "skipped": [], "editing": False,
           "errors": 0, "notices": {}, "step": "content", "meta": {},
           "parked": {"held": None}}
    idle = (services.clock.now() - timedelta(minutes=45)).isoformat()  # parked, as stored
    await services.db.execute(
        "INSERT INTO conversations(user_id, form, token, state, started_at, updated_at) "
        "VALUES (1, 'worklog', 'abcd1234', ?, ?, ?)", (json.dumps(old), idle, idle))
    draft = await services.conversations.get(1)
    assert draft is not None and draft.state.step == "content"
    assert draft.state.parked == {"held": None} and draft.state.history[-1] == "time"
    assert draft.state.to_json() == old  # written back as it was read
    await zhang.say("继续")
    assert "做了什么" in zhang.text, zhang.text
    await zhang.say("更换表箱")
    await zhang.say("无")
    await zhang.press("跳过")
    await zhang.press("跳过")
    assert "巡视" in zhang.text and "3号台区" in zhang.text
    await zhang.press("保存")
    rows = await _rows(services, "SELECT content FROM worklogs")
    assert rows == [{"content": "更换表箱"}]


async def _user(services: Services) -> User:
    user = await services.people.user(1)
    assert user is not None
    return user
