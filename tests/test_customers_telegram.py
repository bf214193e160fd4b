from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.models import Role
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import TgUser, body, labels, register, start_channel, callback_data


@pytest.fixture
async def channel(services: Services, settings: Settings,
                  fake_api: FakeBotAPI) -> AsyncIterator[TelegramChannel]:
    ch = await start_channel(services, settings, fake_api)
    yield ch
    await ch.stop()


def dump(tag, msgs):
    print(f"=== {tag}")
    for m in msgs:
        print(f"  #{m['message_id']} {body(m)!r}\n     {labels(m)} {callback_data(m)}")


async def test_explore(channel, fake_api, services):
    z = await register(fake_api, services, 42, "张三")
    li = await register(fake_api, services, 43, "李四", areas=("7号台区",))
    zhao = await register(fake_api, services, 44, "赵六", team="城西供电所", areas=("9号台区",))
    lead = await register(fake_api, services, 50, "王班长", Role.LEAD, areas=())
    dump("zhao all", await zhao.say("/customers"))
    dump("pre", await z.say("登记特殊客户 9号台区 王五"))
    dump("pre", await z.say("5500012399"))
    dump("pre", await z.say("/cancel"))
    dump("pre", await z.say("登记特殊客户 5500012399 3号台区 王五"))
    dump("pre", await z.say("城东"))
    dump("pre", await z.say("１３８ ００００ １２３４"))
    dump("pre", await z.say("/cancel"))
    for s in ["登记特殊客户 7号台区 陈七", "5500077777", "建设路", "+86 138-0000-7777", "其他", "无", "独居", "跳过", "跳过", "跳过", "跳过", "保存"]:
        dump(s, await li.say(s))
    dump("zdup", await z.say("/customer"))
    dump("zdup", await z.say("5500077777"))
    dump("zdup", await z.press("打开已有档案"))
    dump("zdup", await z.press("保存"))
    dump("lead", await lead.say("查客户 陈七"))
    dump("lead", await lead.press("陈七"))
    dump("lead", await lead.press("修改"))
    dump("lead", await lead.press("保存"))
    dump("lead", await lead.say("/customer"))
