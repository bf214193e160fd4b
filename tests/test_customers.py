"""The special-customer register through the core: register, validate, find, reveal, edit,
visit, deactivate, team isolation."""

from __future__ import annotations

import json

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.features.arrears import ARREARS
from bot.features.customers.form import CUSTOMER, parse_account, parse_account_no
from bot.models import Role
from bot.privacy import mask_address, mask_name, mask_phone
from bot.services import Services
from bot.storage.customers import CustomerData
from bot.validators import account_no, phone, visit_days
from tests.conftest import Chat, make_user


async def _register(chat: Chat, account: str = "5500012345", name: str = "李四",
                    area: str = "3号台区", cats: str = "医疗 独居") -> None:
    await chat.say(f"登记特殊客户 {area} {name}")
    await chat.say(account)
    await chat.say("城东村3组12号")
    await chat.say("13800001234")
    await chat.say(cats)
    await chat.say("家中有制氧机")
    await chat.say("李小四")
    await chat.say("0551-12345678")
    await chat.say("每月")
    await chat.press("停电优先告知")
    await chat.press("完成")
    assert "请确认特殊客户登记" in chat.text, chat.text
    await chat.press("保存")
    assert "已登记特殊客户" in chat.text, chat.text


async def _audit(services: Services) -> list[tuple[str, str]]:
    rows = await services.db.fetchall("SELECT action, detail FROM audit_log ORDER BY id")
    return [(r["action"], r["detail"]) for r in rows]


@pytest.mark.parametrize(("text", "expected"), [
    ("5500012345", "5500012345"), ("５５０００１２３４５", "5500012345"),
    ("5500 0123 45", "5500012345"), ("123", None), ("55000123456789012", None),
    ("55000x2345", None),
])
def test_account_numbers(text: str, expected: str | None) -> None:
    assert account_no(text, 10, 16) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("13800001234", "13800001234"), ("138 0000 1234", "13800001234"),
    ("１３８００００１２３４", "13800001234"), ("+86 138-0000-1234", "13800001234"),
    ("0551-12345678", "0551-12345678"), ("055112345678", "0551-12345678"),
    ("010-1234567", "010-1234567"), ("12800001234", None), ("1380000123", None),
    ("abc", None), ("110", None),
])
def test_phone_numbers(text: str, expected: str | None) -> None:
    assert phone(text) == expected


@pytest.mark.parametrize(("text", "days"), [
    ("30", 30), ("30天", 30), ("每30天", 30), ("每周", 7), ("每月", 30), ("两周", 14),
    ("半个月", 15), ("0", None), ("abc", None), ("1000", None),
])
def test_visit_days(text: str, days: int | None) -> None:
    assert visit_days(text) == days


def test_masks() -> None:
    assert mask_phone("13800001234") == "138****1234"
    assert mask_phone("0551-12345678") == "0551-****5678"
    assert mask_name("李四") == "李*" and mask_name("欧阳娜娜") == "欧阳**"
    assert mask_address("城东村3组12号") == "城东村***"


async def test_register_with_bad_input_first(zhang: Chat, services: Services) -> None:
    await zhang.say("/customer")
    assert "户号" in zhang.text
    await zhang.say("12ab")
    assert "户号「12ab」不对" in zhang.text and "10–16 位数字" in zhang.text
    await zhang.say("５５０００１２３４５")
    await zhang.say("李四")
    await zhang.say("9号台区")
    assert "不是你负责的台区" in zhang.text
    await zhang.say("3号台区")
    await zhang.say("城东村3组12号")
    await zhang.say("12345")
    assert "电话「12345」不对" in zhang.text
    await zhang.say("0551 12345678")
    await zhang.say("随便")
    assert "没有认出「随便」是哪个类别" in zhang.text
    await zhang.press("残疾人")
    await zhang.press("完成")
    await zhang.say("行动不便")
    for _ in range(4):
        await zhang.say("跳过")
    assert "户号：5500012345" in zhang.text and "联系电话：0551-12345678" in zhang.text
    await zhang.press("保存")
    row = await services.db.fetchone("SELECT * FROM customers")
    assert row is not None and row["phone"] == "0551-12345678" and row["account_no"] == "5500012345"
    assert [a for a, _ in await _audit(services)] == ["create"]


@pytest.mark.parametrize(("sentence", "account"), [
    ("特殊客户登记 3号台区 李四 13800001111", None),
    ("登记特殊客户 李四 13800001111 3号台区", None),
    ("登记特殊客户 3号台区 李四 5500012345 +86-138-0000-1111", "5500012345"),
])
async def test_a_mobile_number_in_the_sentence_is_the_phone_not_the_account(
        zhang: Chat, services: Services, sentence: str, account: str | None) -> None:
    """11 digits starting with 1 are the customer's mobile: 户号 is still asked for (or taken
    from the other number), and the phone is not asked again."""
    await zhang.say(sentence)
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    draft = await services.conversations.get(user.id)
    assert draft is not None
    values = draft.state.values
    assert (values.get("account_no"), values.get("phone"), values.get("name")) == (
        account, "13800001111", "李四")
    assert "联系电话 13800001111" in zhang.text  # said as filled in
    if account is None:
        assert zhang.text.endswith("客户户号是多少？"), zhang.text


async def test_duplicate_account_offers_the_existing_record(zhang: Chat,
                                                            services: Services) -> None:
    await _register(zhang)
    await zhang.say("/customer")
    await zhang.say("5500012345")
    assert "已经登记过了（李四，3号台区）" in zhang.text
    await zhang.press("打开已有档案")
    assert "修改特殊客户档案：李四" in zhang.text
    assert "13800001234" not in zhang.text and "138****1234" in zhang.text  # still masked
    await zhang.press("修改")
    await zhang.press("具体情况")
    await zhang.say("家中有制氧机，夜间使用")
    await zhang.press("保存")
    assert "已更新特殊客户档案" in zhang.text
    assert (await services.db.fetchone("SELECT count(*) FROM customers"))[0] == 1  # type: ignore[index]
    edits = [json.loads(d) for a, d in await _audit(services) if a == "edit"]
    assert edits == [{"situation": ["家中有制氧机", "家中有制氧机，夜间使用"]}]


async def test_search_card_reveal_and_paging(zhang: Chat, services: Services) -> None:
    await _register(zhang)
    await _register(zhang, "5500012346", "王五", "5号台区", "重要客户")
    for i in range(10):
        await _register(zhang, f"55000200{i:02d}", f"赵{i}", "5号台区", "其他")
    for query, expect, absent in [
        ("查客户 李四", "李四", "王五"), ("查客户 3号台区", "李四", "王五"),
        ("查客户 5500012346", "王五", "李四"), ("查客户 医疗", "李四", "王五"),
        ("查客户 重要客户", "王五", "李四"), ("查客户 李", "李四", "王五"),
    ]:
        await zhang.say(query)
        assert expect in zhang.text and absent not in zhang.text, (query, zhang.text)
    await zhang.say("/customers 5号台区")
    assert "共 11 户（第 1–8 户）" in zhang.text
    await zhang.press("下一页")
    assert "第 9–11 户" in zhang.text
    await zhang.say("查客户 不存在的人")
    assert "没有找到「不存在的人」" in zhang.text
    await zhang.say("查客户 李四")  # one hit: the card at once (#15)
    assert "138****1234" in zhang.text and "0551-****5678" in zhang.text
    assert "13800001234" not in zhang.text
    await zhang.press("显示电话")
    assert "13800001234" in zhang.text and "0551-****5678" in zhang.text
    assert ("reveal", '{"field": "phone"}') in await _audit(services)
    await zhang.tap("-|cust|1")
    assert "13800001234" not in zhang.text  # the reveal was once; the card stays masked


async def _add(services: Services, account: str, name: str, cats: tuple[str, ...]) -> None:
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    area = next(a for a in await services.people.areas_for(user) if a.name == "3号台区")
    await services.customers.create(user, CustomerData(
        account_no=account, name=name, area_id=area.id, address="东风村3组",
        phone="13800001234", categories=cats), services.clock.now())


@pytest.mark.parametrize(("query", "found"), [
    ("独居老人", {"王大爷"}), ("空巢老人", {"王大爷"}), ("孤寡老人", {"王大爷"}),
    ("老人", {"王大爷"}), ("低保户", {"李婶"}), ("五保户", {"李婶"}), ("困难户", {"李婶"}),
    ("低保", {"李婶"}), ("低保家庭", {"李婶"}), ("残疾", {"孙叔"}), ("残疾人", {"孙叔"}),
    ("医疗", {"赵奶奶"}), ("制氧机", {"赵奶奶"}), ("生命支持", {"赵奶奶"}),
    ("留守儿童", {"小周"}), ("重要客户", {"东风医院"}), ("重要用户", {"东风医院"}),
    ("敏感", {"钱先生"}), ("投诉敏感", {"钱先生"}), ("欠费风险", {"吴老板"}),
    ("独居老人、低保户", {"王大爷", "李婶"}),  # several: anyone in either
    ("王老人", set()),  # not only category words: a name search, which finds nobody
])
async def test_search_by_the_words_people_use_for_a_category(
        zhang: Chat, services: Services, query: str, found: set[str]) -> None:
    everyone = {"王大爷": ("elderly",), "李婶": ("low_income",), "孙叔": ("disabled",),
                "赵奶奶": ("medical",), "小周": ("left_behind",), "东风医院": ("important",),
                "钱先生": ("service_sensitive",), "吴老板": ("arrears_risk",)}
    for i, (name, cats) in enumerate(everyone.items()):
        await _add(services, f"55000300{i:02d}", name, cats)
    await zhang.say(f"查客户 {query}")
    assert {n for n in everyone if n in zhang.text} == found, zhang.text


async def test_category_picker_takes_the_same_words(zhang: Chat, services: Services) -> None:
    await _register(zhang, cats="呼吸机、特困户、孤寡老人")
    await zhang.say("查客户 李四")  # one hit: the card at once
    assert "类别：独居/空巢/孤寡老人、低保/五保/困难家庭、医疗设备/生命支持用电" in zhang.text, \
        zhang.text


async def test_visit_updates_last_visit_and_due_list(zhang: Chat, services: Services,
                                                     clock: FakeClock) -> None:
    await _register(zhang)
    await zhang.say("查客户 待走访")
    assert "李四" in zhang.text and "从未走访" in zhang.text
    await zhang.tap("-|cust|1")
    await zhang.press("记录走访")
    assert "记录走访：李四" in zhang.text and "什么时候" in zhang.text
    await zhang.say("昨天下午3点")
    await zhang.say("检查制氧机供电，告知停电通知渠道")
    for _ in range(3):
        await zhang.say("跳过")
    await zhang.say("保存")
    row = await services.db.fetchone("SELECT customer_id FROM worklogs")
    assert row is not None and row[0] == 1
    c = await services.db.fetchone("SELECT last_visit_at FROM customers")
    assert c is not None and c[0] == "2026-11-26T07:00:00+00:00"
    await zhang.say("查客户 待走访")
    assert "没有需要走访" in zhang.text
    await zhang.tap("-|cust|1")
    assert "最近走访：2026-11-26 周四" in zhang.text
    assert "下次走访：2026-12-26 周六 前" in zhang.text
    clock.advance(days=31)
    await zhang.say("查客户 待走访")
    # one hit: the card at once (#15), with the last visit and the overdue line
    assert "李四" in zhang.text and "最近走访：2026-11-26 周四" in zhang.text


async def test_deactivate_keeps_history(zhang: Chat, services: Services) -> None:
    await _register(zhang)
    await zhang.tap("-|cust|1")
    await zhang.press("停用")
    assert "停用原因" in zhang.text
    await zhang.say("已搬迁")
    await zhang.press("保存")
    assert "已停用" in zhang.text
    await zhang.say("查客户 李四")  # found, marked (issue #15 §3: was "没有找到")
    assert "只找到 1 户已停用的档案" in zhang.text and "⛔ 已停用" in zhang.text
    await zhang.tap("-|cust|1")
    assert "已停用：已搬迁" in zhang.text and "恢复" in str(zhang.last)
    assert (await services.db.fetchone("SELECT count(*) FROM customers"))[0] == 1  # type: ignore[index]
    assert [a for a, _ in await _audit(services)] == ["create", "deactivate"]
    await zhang.press("恢复")
    await zhang.say("查客户 李四")
    assert "李四" in zhang.text and "没有找到" not in zhang.text


async def test_other_teams_cannot_see_or_forge(services: Services, assistant: Assistant,
                                               zhang: Chat) -> None:
    await _register(zhang)
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    zhao = Chat(assistant, "test", "赵六")
    await zhao.say("查客户 李四")
    assert "没有找到" in zhao.text
    await zhao.say("查客户 5500012345")
    assert "没有找到" in zhao.text
    for action in ("cust", "reveal", "revealE", "custedit", "custvisit", "custoff", "custlog",
                   "custon"):
        await zhao.tap(f"-|{action}|1")
        assert "李四" not in zhao.text and "1380000" not in zhao.text, (action, zhao.text)
    # Same 户号 in another team is a different customer, not a duplicate.
    await zhao.say("/customer")
    await zhao.say("5500012345")
    assert "已经登记过了" not in zhao.text and "户名" in zhao.text
    assert [a for a, _ in await _audit(services)] == ["create"]


async def test_lead_sees_audit_trail_manager_does_not(services: Services,
                                                      assistant: Assistant,
                                                      zhang: Chat) -> None:
    await _register(zhang)
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    lead = Chat(assistant, "test", "王班长")
    await lead.tap("-|reveal|1")
    await lead.press("操作记录")
    assert "操作记录：李四" in lead.text and "张三 登记" in lead.text
    assert "王班长 查看了完整号码 联系电话" in lead.text
    await zhang.tap("-|custlog|1")
    assert "只有班长和管理员" in zhang.text


def test_one_account_number_rule_for_the_register_and_arrears() -> None:
    """The 户号 of an arrears record is read by the register's parser: same rule, same message."""
    assert ARREARS.get_field("account_no").parse is parse_account_no
    assert CUSTOMER.get_field("account_no").parse is parse_account  # wraps parse_account_no


async def test_the_leads_of_a_team_are_its_active_leads(services: Services) -> None:
    lead = await make_user(services, "王班长", Role.LEAD)
    acting = await make_user(services, "李班长", Role.LEAD)
    gone = await make_user(services, "赵班长", Role.LEAD)
    await make_user(services, "外班长", Role.LEAD, team="城西供电所")
    await make_user(services, "张三")
    await services.db.execute("UPDATE users SET active = 0 WHERE id = ?", (gone.id,))
    team = lead.team_id
    assert [u.name for u in await services.people.leads_of(team)] == ["王班长", "李班长"]
    assert [u.name for u in await services.people.leads_of(team, acting.id)] == ["王班长"]
