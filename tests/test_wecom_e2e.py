"""The assistant used through WeCom, end to end: the fake WeCom posts callbacks encrypted and
signed by tests/wecom_reference.py to the real callback server; the channel records them,
the core answers, the outbox sends through the real API client. Every test ends with the
fake's records checked: no message dropped for being over WeCom's per-member limits, none
cut for being over 2048 bytes."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image

from bot.assistant import Assistant
from bot.channels.wecom.channel import WeComChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import SHANGHAI, make_user
from tests.fakewecom import FakeWeCom, Sent
from tests.test_records_telegram import late
from tests.tg_harness import L, worklog_rows
from tests.wecom_harness import (
    WcUser,
    labels,
    shown,
    start_wecom,
    texts,
    tick,
    wecom_settings,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f
        assert f.dropped == [], f"WeCom dropped over-budget messages: {f.dropped}"
        assert f.truncated == [], f"WeCom cut over-long texts: {f.truncated}"


@pytest.fixture
async def channel(services: Services, fake: FakeWeCom) -> AsyncIterator[WeComChannel]:
    ch = await start_wecom(services, fake)
    yield ch
    await ch.stop()


@dataclass
class Team:
    services: Services
    clock: FakeClock
    fake: FakeWeCom
    channel: WeComChannel
    zhang: WcUser
    lead: WcUser

    async def scan_at(self, *when: int) -> dict[str, list[Sent]]:
        """Move the clock to a local time, run one reminder scan, return what each got."""
        if when:
            moment = datetime(*when, tzinfo=SHANGHAI)  # type: ignore[misc]
            self.fake.advance((moment - self.clock.now()).total_seconds())
            self.clock.set(moment)
        before = {u.userid: len(u.sent) for u in (self.zhang, self.lead)}
        service = ReminderService(self.services,
                                  Dispatcher.for_channels(self.services, [self.channel]))
        await service.scan_once()
        await self.channel.idle()
        return {u.userid: u.sent[before[u.userid]:] for u in (self.zhang, self.lead)}


@pytest.fixture
async def team(services: Services, fake: FakeWeCom, channel: WeComChannel,
               clock: FakeClock) -> Team:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    await make_user(services, "王班长", Role.LEAD, areas=(), channel="wecom",
                    external_id="wangbz")
    return Team(services, clock, fake, channel, WcUser(fake, channel, "zhangsan"),
                WcUser(fake, channel, "wangbz"))


def only(msgs: list[Sent]) -> Sent:
    assert len(msgs) == 1, [shown(m) for m in msgs]
    return msgs[0]


# --- a work log with prefill, a picture and a location -----------------------------------
async def test_worklog_with_prefill_photo_and_location(team: Team, services: Services,
                                                       fake: FakeWeCom) -> None:
    zhang = team.zhang
    r = await zhang.say("记录巡视 3号台区")
    assert texts(r).startswith(L("form.prefilled", title="工作日志",
                                 values="工作项目 巡视 · 台区 3号台区"))
    assert labels(r[-1]) == ["🕒 现在", "✖️ 取消"]
    r = await zhang.press("现在")
    assert shown(only(r)) == L("form.worklog.content")
    # The tapped card now shows what was chosen, its buttons gone (response code used once).
    assert fake.card_updates[-1]["button"] == {"replace_name": L("wecom.chosen",
                                                                 label="🕒 现在")}
    await zhang.say("更换3号杆表箱锁具")
    r = await zhang.press("跳过")
    assert L("form.worklog.photos") in texts(r)
    r = await zhang.image(b"\x89PNG picture one")
    assert L("form.photo_received", count=1) in texts(r)
    r = await zhang.press("完成")
    assert L("form.worklog.location") in texts(r)
    r = await zhang.location(31.82, 117.23)
    assert "位置：31.82000, 117.23000" in texts(r)
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert (row["items"], row["area_name"], row["content"]) == (
        ["patrol"], "3号台区", "更换3号杆表箱锁具")
    assert (row["latitude"], row["longitude"]) == (31.82, 117.23)
    # The picture was fetched at once and kept: the core's reference shows it again later.
    [ref] = row["photos"]
    assert ref.startswith("wecom:")
    stored = await services.db.fetchone("SELECT content FROM wecom_media WHERE id = ?",
                                        (int(ref.split(":")[1]),))
    assert stored is not None and bytes(stored[0]) == b"\x89PNG picture one"
    # Opened later from /logs, the entry shows the picture again (uploaded from our copy).
    await zhang.say("/logs")
    r = await zhang.press(f"#{row['id']}")
    assert r[-1].msgtype == "image"
    assert fake.media[r[-1].payload["media_id"]][0] == b"\x89PNG picture one"


# --- a special customer, phone revealed once and audited ---------------------------------
async def test_special_customer_registered_and_phone_revealed(team: Team,
                                                              services: Services) -> None:
    zhang = team.zhang
    r = await zhang.say("登记特殊客户 3号台区 李四")
    assert L("form.customer.account_no") in texts(r)
    for text in ("5500012345", "城东村3组12号", "13800001234", "医疗 独居", "家中有制氧机",
                 "李小四", "0551-12345678", "每月"):
        await zhang.say(text)
    await zhang.press("☐ 停电优先告知")
    r = await zhang.press("完成")
    assert L("form.summary_title", title=L("form.customer.title")) in texts(r)
    r = await zhang.press("保存")
    assert L("customer.saved", name="李四", account="5500012345") in texts(r)
    r = await zhang.say("查客户 李四")  # one hit: the card at once (#15)
    assert "138****1234" in texts(r) and "13800001234" not in texts(r)
    r = await zhang.press(L("btn.reveal_phone"))
    assert "13800001234" in texts(r)
    # No toast on WeCom: the core says it in the reply instead.
    assert L("customer.revealed_toast") in texts(r)
    rows = await services.db.fetchall(
        "SELECT action, detail, actor FROM audit_log WHERE entity = 'customer' ORDER BY id")
    assert [(x["action"], json.loads(x["detail"]), x["actor"]) for x in rows] == [
        ("create", {"account_no": "5500012345"}, "张三"),
        ("reveal", {"field": "phone"}, "张三")]


# --- a complaint: reminder to the manager, escalation to the lead -------------------------
async def test_complaint_reminder_reaches_manager_and_escalates_to_lead(team: Team) -> None:
    zhang = team.zhang
    await zhang.say("登记投诉")
    await zhang.say("2026112700123")
    await zhang.press("投诉")
    await zhang.press("跳过")
    await zhang.say("张先生")
    await zhang.say("13800001234")
    await zhang.press("现在")
    await zhang.say("近一周频繁停电")
    r = await zhang.press("保存")
    assert L("complaint.saved", id=1, kind=L("complaint.kind.complaint")) in texts(r)
    item = L("complaint.title", id=1, kind=L("complaint.kind.complaint"), who="（张先生）")
    got = await team.scan_at(2026, 11, 27, 15, 1)  # half-way: the manager only
    assert item in texts(got["zhangsan"]) and L("btn.contacted") in labels(got["zhangsan"][-1])
    assert got["wangbz"] == []
    await team.scan_at(2026, 11, 30, 8, 31)  # the morning digests
    got = await team.scan_at(2026, 11, 30, 10, 31)
    assert item in texts(got["zhangsan"])
    escalation = texts(got["wangbz"])
    assert escalation.startswith(L("reminder.escalate", owner="张三", item=item,
                                   what=L("complaint.step.contact"),
                                   due="2026-11-30 周一 10:30", late=late(minutes=1)))
    # The reminder's buttons work from the lead's card.
    r = await team.lead.press(L("btn.open_item"))
    assert L("complaint.status.open") in texts(r)
    assert (await team.scan_at()) == {"zhangsan": [], "wangbz": []}


async def test_unreachable_member_reminders_go_to_the_lead(team: Team, fake: FakeWeCom,
                                                           services: Services) -> None:
    await team.zhang.say("报修 3号台区 变压器冒烟")
    await team.zhang.press("现在")
    await team.zhang.press("保存")
    fake.unreachable.add("zhangsan")  # taken out of the app's visible range (81013)
    got = await team.scan_at(2026, 11, 27, 11, 21)
    assert got["zhangsan"] == []
    assert L("reminder.unreachable", name="张三") in texts(got["wangbz"])
    user = await services.people.by_identity("wecom", "zhangsan")
    assert user is not None and user.unreachable


# --- the report: text, XLSX and chart ----------------------------------------------------
async def test_report_with_xlsx_and_chart(team: Team, fake: FakeWeCom) -> None:
    zhang, lead = team.zhang, team.lead
    await zhang.say("巡视 3号台区 今天上午9点 2号杆拉线松动")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    r = await lead.say("/report 本周")
    kinds = [m.msgtype for m in r]
    assert kinds[-2:] == ["file", "image"], kinds
    assert "城东供电所" in texts(r)
    content, _, filename = fake.media[r[-2].payload["media_id"]]
    assert filename.endswith(".xlsx")
    wb = load_workbook(io.BytesIO(content))
    assert "汇总" in wb.sheetnames
    png, _, _ = fake.media[r[-1].payload["media_id"]]
    assert Image.open(io.BytesIO(png)).format == "PNG"


# --- more than six choices: numbered, a typed number picks -------------------------------
async def test_list_of_more_than_six_choices_is_numbered_and_a_number_picks(
        team: Team, services: Services) -> None:
    from bot.storage.customers import CustomerData

    owner = await services.people.by_identity("wecom", "zhangsan")
    assert owner is not None
    area = next(a.id for a in await services.people.areas_for(owner) if a.name == "5号台区")
    for i in range(10):
        await services.customers.create(owner, CustomerData(
            f"55000200{i:02d}", f"赵{i:02d}", area, "某路1号", "13900009999", ("other",)),
            services.clock.now())
    r = await team.zhang.say("/customers")
    assert all(len(m.payload.get("button_list", [])) <= 6 for m in r)
    listing = texts(r)
    assert "1. 赵00 5500020000" in listing and "8. 赵07 5500020007" in listing
    r = await team.zhang.say("3")  # typed number: the third choice's button
    assert texts(r).startswith("赵02") or "赵02" in texts(r).splitlines()[0]
    assert "139****9999" in texts(r)
    await team.zhang.say("/customers")
    r = await team.zhang.say("赵05 5500020005")  # or its label
    assert "赵05" in texts(r).splitlines()[0] and "139****9999" in texts(r)


# --- redelivery, replay, restart ---------------------------------------------------------
async def test_redelivered_and_replayed_callbacks_are_processed_once(
        team: Team, fake: FakeWeCom, channel: WeComChannel) -> None:
    xml = fake.text_xml("zhangsan", "/help", msg_id="7000000000000001")
    for _ in range(3):  # WeCom's redeliveries: same MsgId, new timestamp and nonce
        status, body = await fake.post_callback(channel.url, xml)
        assert (status, body) == (200, "")
    await channel.idle()
    kinds = [m.msgtype for m in team.zhang.sent]  # one answer: its text (in parts), one card
    assert kinds[-1] == "template_card" and set(kinds[:-1]) == {"text"}
    assert kinds.count("template_card") == 1
    assert channel.server.duplicates == 2
    rows = await team.services.db.fetchall("SELECT state FROM wecom_inbox")
    assert [r[0] for r in rows] == ["done"]


async def test_restart_between_the_200_and_the_send_loses_nothing(
        services: Services, fake: FakeWeCom, clock: FakeClock) -> None:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    first = WeComChannel(Assistant(services), wecom=wecom_settings(fake))
    first.server.on_new = lambda external_id: None  # the process dies before handling
    await first.start()
    status, _ = await fake.post_callback(first.url, fake.text_xml("zhangsan", "/settings"))
    assert status == 200
    await first.stop()  # recorded and acknowledged, not handled
    assert fake.sent("zhangsan") == []
    assert await inbox_states(services) == ["new"]

    second = WeComChannel(Assistant(services), wecom=wecom_settings(fake))
    # This one dies after handling, before sending: its sender never runs.
    second.sender.lanes.poke = lambda external_id: None  # type: ignore[method-assign]
    second.sender.kick = lambda: None  # type: ignore[method-assign]
    second.sender.start = lambda: None  # type: ignore[method-assign]
    await second.start()
    await second.inbox.lanes.idle()
    await second.stop()  # handled and queued, not sent
    assert fake.sent("zhangsan") == []
    assert await inbox_states(services) == ["done"]

    third = await start_wecom(services, fake)
    await third.idle()
    assert [m.msgtype for m in fake.sent("zhangsan")] == ["template_card"]
    await third.stop()


async def inbox_states(services: Services) -> list[str]:
    return [r[0] for r in await services.db.fetchall("SELECT state FROM wecom_inbox")]


# --- WeCom's per-member limits ----------------------------------------------------------
async def test_no_member_ever_gets_more_than_30_a_minute_and_nothing_is_dropped(
        team: Team, fake: FakeWeCom, services: Services, clock: FakeClock) -> None:
    from bot.events import Reply

    notifier = team.channel.notifier
    for i in range(40):
        await notifier.push("zhangsan", Reply(f"提醒 {i}"))
    await team.channel.idle()
    assert [m.text for m in fake.sent("zhangsan")] == [f"提醒 {i}" for i in range(30)]
    held = await services.db.fetchone(
        "SELECT count(*) FROM wecom_outbox WHERE state = 'queued'")
    assert held is not None and held[0] == 10
    # A restart does not reset the count: the new process holds them too.
    await team.channel.stop()
    again = await start_wecom(services, fake)
    await again.idle()
    assert len(fake.sent("zhangsan")) == 30
    tick(clock, fake, again, 62)
    await again.idle()
    assert [m.text for m in fake.sent("zhangsan")] == [f"提醒 {i}" for i in range(40)]
    await again.stop()
    team.channel = again


@pytest.mark.parametrize("fault", ["45009", "45033", "-1", "502"])
async def test_retry_later_errors_back_off_and_deliver(team: Team, fake: FakeWeCom,
                                                      clock: FakeClock, fault: str) -> None:
    fake.fail_next("/cgi-bin/message/send", fault)
    r = await team.zhang.say("/settings")
    assert r == []
    tick(clock, fake, team.channel, 3)
    await team.channel.idle()
    assert [m.msgtype for m in team.zhang.sent] == ["template_card"]


async def test_ip_not_trusted_is_one_clear_log_line(team: Team, fake: FakeWeCom,
                                                    caplog: pytest.LogCaptureFixture,
                                                    clock: FakeClock) -> None:
    fake.fail_next("/cgi-bin/message/send", "60020", count=2)
    await team.zhang.say("/settings")
    await team.zhang.say("/settings")
    lines = [r for r in caplog.records if "60020" in r.getMessage()]
    assert len(lines) == 1 and "企业可信IP" in lines[0].getMessage()
    for _ in range(2):  # refused twice: held, then tried again later
        assert team.zhang.sent == []
        tick(clock, fake, team.channel, 301)
        await team.channel.idle()
    assert len([r for r in caplog.records if "60020" in r.getMessage()]) == 1
    assert len(team.zhang.sent) == 2  # nothing lost once the admin fixed it


# --- events and other input --------------------------------------------------------------
async def test_enter_agent_greets_once_menu_click_and_unsupported_input(
        team: Team, fake: FakeWeCom, channel: WeComChannel) -> None:
    r = await team.zhang.event("enter_agent")
    assert "张三" in texts(r)
    assert await team.zhang.event("enter_agent") == []
    stranger = WcUser(fake, channel, "stranger1")
    r = await stranger.event("enter_agent")
    assert texts(r) == L("start.need_code")
    assert await stranger.event("enter_agent") == []
    r = await team.zhang.event("click", "cmd:todo")
    assert texts(r) == texts(await team.zhang.say("/todo"))
    xml = fake._inner("zhangsan", "voice", None, None,
                      "<MediaId><![CDATA[v1]]></MediaId><Format><![CDATA[amr]]></Format>")
    r = await team.zhang._post(xml)
    assert L("media.unsupported") in texts(r)


async def test_start_code_binds_a_wecom_member(services: Services, fake: FakeWeCom,
                                              channel: WeComChannel) -> None:
    invite = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name="李四",
        now=services.clock.now(), ttl=__import__("datetime").timedelta(days=7))
    lisi = WcUser(fake, channel, "lisi")
    r = await lisi.say(f"/start {invite.code}")
    assert "李四" in texts(r)
    user = await services.people.by_identity("wecom", "lisi")
    assert user is not None and user.name == "李四"


# --- one person on Telegram and WeCom ---------------------------------------------------
async def test_one_person_on_telegram_and_wecom(services: Services, settings: Any,
                                                fake: FakeWeCom, channel: WeComChannel,
                                                clock: FakeClock) -> None:
    from bot.channels.telegram import TelegramChannel
    from bot.events import Reply
    from tests.conftest import telegram_settings
    from tests.fakebotapi import FakeBotAPI
    from tests.tg_harness import body, register

    async with FakeBotAPI() as tg_fake:
        # Both channels on one core, as `taiqu-bot run` has them.
        tg = TelegramChannel(channel.assistant, telegram_settings(settings, tg_fake))
        await tg.start()
        try:
            zhang_tg = await register(tg_fake, services, 42, "张三")
            user = await services.people.by_identity("telegram", "42")
            assert user is not None
            async with services.db.tx() as tx:
                await services.people.link_identity(tx, "wecom", "zhangsan", user.id,
                                                    clock.now())
            zhang_wc = WcUser(fake, channel, "zhangsan")
            # A form opened on Telegram is the same form on WeCom: one account, one form.
            r = await zhang_tg.say("记录巡视 3号台区")
            assert L("form.worklog.time") in body(r[0])
            r = await zhang_wc.say("刚才")
            assert shown(only(r)) == L("form.worklog.content")
            r = await zhang_tg.say("更换3号杆表箱锁具")
            assert body(r[0]).startswith(L("form.worklog.problems"))
            clock.advance(minutes=1)
            await zhang_wc.say("跳过")  # the question's buttons are on Telegram: typed
            await zhang_wc.press("跳过")
            await zhang_wc.press("跳过")
            await zhang_wc.press("保存")
            [row] = await worklog_rows(services)
            assert row["user_name"] == "张三" and row["content"] == "更换3号杆表箱锁具"
            # Pushes go where the person was last seen: WeCom now, Telegram after they
            # write there (identities.last_seen_at).
            dispatcher = Dispatcher.for_channels(services, [tg, channel])
            await dispatcher.push(user.id, Reply("提醒一"))
            await channel.idle()
            assert shown(zhang_wc.last) == "提醒一"
            clock.advance(minutes=11)
            await zhang_tg.say("/help")
            await dispatcher.push(user.id, Reply("提醒二"))
            assert any(m.get("text") == "提醒二" for m in tg_fake.sent(42))
            assert "提醒二" not in texts(zhang_wc.sent)
            # WeCom gone for them (81013): the push falls back to Telegram.
            fake.unreachable.add("zhangsan")
            async with services.db.tx() as tx:
                await tx.execute("UPDATE identities SET last_seen_at = ? WHERE channel = "
                                 "'wecom'", ("2099-01-01T00:00:00+00:00",))
            await dispatcher.push(user.id, Reply("提醒三"))
            assert any(m.get("text") == "提醒三" for m in tg_fake.sent(42))
        finally:
            await tg.stop()
