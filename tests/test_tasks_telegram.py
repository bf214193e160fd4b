"""派任务 and 上报 through the real Telegram channel (PTB Application) against the loopback
fake Bot API: the lead's sentence, the assignee's push with buttons that act, the question
to the lead and the answer back, the result with a photo, and a matter sent up."""

from __future__ import annotations

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import body, labels, register, texts


async def test_a_task_from_sentence_to_done_over_telegram(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    lead = await register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))

    out = await lead.say("派任务 张三 明天下班前 核对5号台区特殊客户电话")
    assert "派给 张三 · 期限 2026-11-28 周六 17:30" in texts(out)
    out = await lead.press("保存")
    assert "已派任务给 张三（1 人）" in texts(out)

    await service.scan_once()
    push = next(m for m in zhang.sent if body(m).startswith("📌 王班长 派给你一个任务"))
    assert labels(push)[:3] == ["👍 接受", "❓ 提问", "✅ 完成"]
    out = await zhang.press("接受", message=push)
    assert "已接受任务 #1" in texts(out)
    await zhang.press("提问", message=push)
    await zhang.say("名单用哪一版？")
    out = await zhang.press("保存")
    assert "问题已发给 王班长" in texts(out)

    await service.scan_once()
    question = lead.last
    assert body(question) == "❓ 张三 对任务 #1（核对5号台区特殊客户电话）提问：名单用哪一版？"
    await lead.press("回复", message=question)
    await lead.say("用11月的")
    await lead.press("保存")
    await service.scan_once()
    assert body(zhang.last) == (
        "💬 王班长 回复了你对任务 #1（核对5号台区特殊客户电话）的提问：用11月的")

    await zhang.press("完成", message=push)
    await zhang.say("已核对12户")
    await zhang.photo("photo-after")
    await zhang.press("完成")
    out = await zhang.press("保存")
    assert "已完成，已告诉 王班长" in texts(out)
    await service.scan_once()
    done = [m for m in lead.sent if "完成了任务 #1" in body(m)]
    assert len(done) == 1
    assert fake_api.calls_to("sendPhoto"), "the result photo reaches the lead"

    # 上报 with the lead's reply.
    await zhang.say("上报 2号杆拉线松动")
    await zhang.press("保存")
    await service.scan_once()
    up = lead.last
    assert body(up) == "📣 张三 上报：2号杆拉线松动"
    await lead.press("回复", message=up)
    await lead.say("周三处理")
    await lead.press("保存")
    await service.scan_once()
    assert body(zhang.last) == "💬 王班长 回复了你的上报：周三处理"
