"""Issue #15 §2 "Fewer taps", through the real PTB Application against the fake Bot API:
a manager's only 台区 is not asked, '你是不是要找' answers in one tap, one search hit opens
its card, a 户号 on file brings its 户名 and notes, and the outage checklist can call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.telegram import TelegramChannel
from bot.config import Settings, load_settings
from bot.models import User
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, body, labels, register

pytestmark = pytest.mark.timeout(60)
REVEAL_LIMIT = 2


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(db_path=tmp_path / "taiqu.db", reveal_limit=REVEAL_LIMIT)


async def owner(services: Services, name: str) -> User:
    return next(u for u in await services.people.users() if u.name == name)


async def add_customer(services: Services, user: User, name: str, account: str,
                       cats: tuple[str, ...] = ("elderly",), **more: object) -> int:
    area_id = (await services.people.areas_for(user))[0].id
    fields: dict[str, object] = {"address": "东风村3组", "phone": "13800001234", **more}
    data = CustomerData(account_no=account, name=name, area_id=area_id, categories=cats,
                        **fields)  # type: ignore[arg-type]
    return await services.customers.create(user, data, services.clock.now())


# --- 1. the only area is not asked --------------------------------------------------------
async def test_manager_with_one_area_is_not_asked_which(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    zhang = await register(fake_api, services, 42, "张三", areas=("3号台区",))
    r = await zhang.say("/repair")
    assert L("form.sole_filled", label="台区", value="3号台区") in body(r[0])
    assert L("form.repair.received_at") in body(r[0])  # the first question is the time
    await zhang.press("现在")
    r = await zhang.say("变压器冒烟")
    assert "台区：3号台区" in body(r[0])  # on the summary ...
    await zhang.press(L("btn.edit"))
    r = await zhang.press("台区")  # ... and editable
    assert L("form.repair.area") in body(r[0]) and "3号台区" in labels(r[0])
    await zhang.press("3号台区")
    r = await zhang.press(L("btn.save"))
    assert L("repair.title", id=1, area="3号台区") in body(r[0]) or "3号台区" in body(r[0])
    row = await services.db.fetchone("SELECT area_id FROM repairs WHERE id = 1")
    assert row is not None and row[0] == 1


async def test_two_areas_are_still_asked(channel: TelegramChannel, fake_api: FakeBotAPI,
                                         services: Services) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    r = await zhang.say("/repair")
    assert L("form.repair.area") in body(r[0])
    assert labels(r[0])[:2] == ["3号台区", "5号台区"]


# --- 3. one search hit opens its card -----------------------------------------------------
async def test_search_with_one_hit_opens_the_card(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    user = await owner(services, "张三")
    await add_customer(services, user, "李四", "5500012345")
    await add_customer(services, user, "李五", "5500012346")
    r = await zhang.say("查客户 5500012345")
    assert body(r[0]).startswith(L("customer.card_title", name="李四", account="5500012345"))
    assert L("btn.reveal_phone") in labels(r[0])
    r = await zhang.say("查客户 李")  # two hits: still the list
    assert L("customers.title", text="李", total=2, first=1, last=2) in body(r[0])


# --- 4. a 户号 on file brings its 户名 and the notes that matter --------------------------
async def test_account_on_file_fills_the_name_and_shows_proxy_and_medical_notes(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    user = await owner(services, "张三")
    await add_customer(services, user, "李四", "5500012345", ("elderly", "medical"),
                       situation="家中有制氧机", proxy_pay=True)
    await zhang.say("登记投诉")
    await zhang.say("2026112700123")
    await zhang.press("投诉")
    r = await zhang.say("5500012345")
    shown = body(r[0])
    assert L("register.on_file", name="李四", area="3号台区") in shown
    assert L("register.proxy_pay") in shown
    assert L("register.medical", situation="家中有制氧机") in shown
    assert L("form.complaint.customer_name") not in shown  # the name is not asked ...
    assert L("form.complaint.customer_phone") in shown
    await zhang.press("跳过")
    await zhang.press("现在")
    r = await zhang.say("近一周频繁停电")
    flags = f" · {L('measure.proxy_pay')} · {L('category.medical')}"
    assert "户号：" + L("register.account_on_file", account="5500012345", name="李四",
                        flags=flags) in body(r[0])
    assert "户名：李四" in body(r[0])  # ... it is on the summary, and editable:
    await zhang.press(L("btn.edit"))
    await zhang.press("户名")
    r = await zhang.say("李小四")
    assert "户名：李小四" in body(r[0])
    await zhang.press(L("btn.save"))
    row = await services.db.fetchone("SELECT customer_name, customer_id FROM complaints")
    assert row is not None and tuple(row) == ("李小四", 1)


async def test_changing_the_account_takes_back_the_filled_name(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    await add_customer(services, await owner(services, "张三"), "李四", "5500012345")
    await zhang.say("/arrears")
    r = await zhang.say("5500012345")
    assert L("form.arrears.amount") in body(r[0])
    await zhang.say("500")
    await zhang.say("10月1日")
    r = await zhang.press("否")
    assert "户名：李四" in body(r[0])
    await zhang.press(L("btn.edit"))
    await zhang.press("户号")
    r = await zhang.say("5500099999")  # not on file: 李四 was the register's, not the user's
    assert "户名：李四" not in body(r[0])
    assert L("register.account_not_on_file", account="5500099999") in body(r[0])


# --- 5. the outage checklist can call ------------------------------------------------------
async def test_outage_checklist_reveals_each_phone_once_audited_with_notes(
        channel: TelegramChannel, fake_api: FakeBotAPI, services: Services) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    user = await owner(services, "张三")
    await add_customer(services, user, "李奶奶", "1000000001", ("medical",),
                       situation="家中有制氧机", proxy_pay=True, phone="13900001111")
    await add_customer(services, user, "王大爷", "1000000002", phone="13900002222")
    await add_customer(services, user, "赵阿姨", "1000000003", phone="13900003333")
    await zhang.say("登记停电")
    await zhang.press("3号台区")
    await zhang.press(L("btn.done"))
    await zhang.press(L("outage.kind.planned"))
    await zhang.say("12月5日10点")
    await zhang.say("17点")
    await zhang.say("10kV东风线检修")
    saved = (await zhang.press(L("btn.save")))[0]
    card = (await zhang.press(L("btn.outage_checklist"), message=saved))[0]
    li, wang = L("outage.phone", phone="139****1111"), L("outage.phone", phone="139****2222")
    assert li in body(card) and "13900001111" not in body(card)  # masked until tapped
    assert L("outage.customer_notes", notes="家中有制氧机 · " + L("measure.proxy_pay")) \
        in body(card)
    assert labels(card)[1:3] == ["☐ 李奶奶", li]

    r = await zhang.press(li, message=card)  # tap: the number in place, on the same card
    assert r[0]["message_id"] == card["message_id"]
    assert L("outage.phone", phone="13900001111") in body(r[0])
    assert wang in body(r[0]) and li not in labels(r[0]) and wang in labels(r[0])
    assert zhang.answers()[-1]["text"] == L("customer.revealed_toast")
    audit = await services.db.fetchall(
        "SELECT entity_id, action FROM audit_log WHERE action LIKE 'reveal%' ORDER BY id")
    assert [tuple(a) for a in audit] == [(1, "reveal")]

    # The same per-person limit as the customer card: the third reveal is refused.
    await zhang.press(wang, message=r[0])
    r = await zhang.press(L("outage.phone", phone="139****3333"), message=card)
    assert body(r[0]) == L("customer.reveal_limited", limit=REVEAL_LIMIT, minutes=60)
    audit = await services.db.fetchall(
        "SELECT action FROM audit_log WHERE action LIKE 'reveal%' ORDER BY id")
    assert [a[0] for a in audit] == ["reveal", "reveal", "reveal_limited"]
