"""保存 steps that read nothing before their write (issue #12: the step's read and the write):
what the read before the write used to decide is now decided by the write itself, guarded in
SQL, and a refusal still says why, as it did (read once refused). A meter request links the
register's entry as it is at the write; a special customer's 户号 registered meanwhile, an
edit of a record deactivated or edited by someone else since its form opened, a 停用 of a
record no longer the user's; an edited work log's card buttons (转为隐患 / 查看隐患)."""

from __future__ import annotations

import json

import pytest

from bot.assistant import Assistant
from bot.models import User
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import Chat, make_user
from tests.test_todo_lists import add_customer
from tests.tg_harness import L

pytestmark = pytest.mark.both_backends


@pytest.fixture
async def zhang(services: Services, assistant: Assistant) -> Chat:
    await make_user(services, "张三")
    chat = Chat(assistant, "test", "张三")
    await chat.say("你好")
    return chat


async def user_of(services: Services, name: str) -> User:
    user = await services.people.by_identity("test", name)
    assert user is not None
    return user


async def audit(services: Services, cid: int) -> list[tuple[str, dict[str, object]]]:
    rows = await services.db.fetchall(
        "SELECT action, detail FROM audit_log WHERE entity = 'customer' AND entity_id = ? "
        "ORDER BY id", (cid,))
    return [(r["action"], json.loads(r["detail"])) for r in rows]


def buttons(chat: Chat) -> list[str]:
    assert chat.last is not None
    return [b.label for r in chat.last.replies for row in r.buttons for b in row]


# --- a meter request: the register as it is at the write ---------------------------------
@pytest.mark.parametrize(("registered", "named"), [(False, None), (True, None),
                                                   (True, "张先生")])
async def test_a_meter_request_links_the_register_entry_at_its_save(
        services: Services, zhang: Chat, registered: bool, named: str | None) -> None:
    """The 户号 answered while not on file; registered before 保存 (by a teammate), the
    request is linked to it and named after it (unless the manager gave the customer's
    name), and the reply no longer says it is not on file."""
    await zhang.say("抄表异常 3100012345 本月电量比上月多一倍")
    await (zhang.say(named) if named else zhang.press("跳过"))
    await zhang.press("现在")
    if registered:
        await add_customer(services, await user_of(services, "张三"), "李奶奶", "3100012345",
                           (), None)
    await zhang.press("保存")
    assert "已登记抄表异常 #1" in zhang.text
    not_on_file = L("meter.not_in_register").split("{")[0]
    assert (not_on_file in zhang.text) is not registered, zhang.text
    row = await services.db.fetchone("SELECT customer_id, customer_name FROM meter_requests")
    assert row is not None
    assert (row["customer_id"] is not None, row["customer_name"]) == (
        registered, named or ("李奶奶" if registered else None))


# --- a special customer: registered meanwhile, edited or deactivated since ----------------
async def fill_register_form(chat: Chat, account: str = "5500012345") -> None:
    await chat.say("登记特殊客户 3号台区 李四")
    for text in (account, "城东村3组12号", "13800001234", "医疗 独居", "家中有制氧机",
                 "跳过", "跳过", "每月"):
        await chat.say(text)
    await chat.press("完成")
    assert "请确认特殊客户登记" in chat.text, chat.text


async def test_a_number_registered_meanwhile_is_refused_saying_whose_it_is(
        services: Services, assistant: Assistant, zhang: Chat) -> None:
    await make_user(services, "王五")
    await fill_register_form(zhang)
    await add_customer(services, await user_of(services, "王五"), "赵奶奶", "5500012345", (),
                       None)
    await zhang.press("保存")
    said = L("customer.account.duplicate", account="5500012345", name="赵奶奶",
             area="3号台区")
    assert said in zhang.text, zhang.text
    row = await services.db.fetchone("SELECT count(*) FROM customers")
    assert row is not None and row[0] == 1
    user = await user_of(services, "张三")
    assert await services.conversations.get(user.id) is not None  # the form stays open
    await zhang.press("保存")  # and says so again: nothing was written meanwhile
    assert said in zhang.text


async def open_edit_of_phone(zhang: Chat, cid: int, phone: str) -> None:
    await zhang.tap(f"-|custedit|{cid}")
    await zhang.press("修改")
    await zhang.press("联系电话")
    await zhang.say(phone)


async def edited_by_another_meanwhile(services: Services, zhang: Chat,
                                     account: str = "5500012345") -> int:
    """张三's special customer, its phone changed in an edit form opened, and its address
    changed by someone else since: the customer's id."""
    user = await user_of(services, "张三")
    cid = await add_customer(services, user, "李奶奶", account, ("medical",), every=30)
    await open_edit_of_phone(zhang, cid, "13900005678")
    before = await services.customers.get(user, cid)
    assert before is not None
    other = CustomerData(**{**before.data().__dict__, "address": "城西村1组1号"})
    assert await services.customers.update(user, cid, other, services.clock.now())
    return cid


async def test_an_edit_over_another_made_since_audits_what_it_changed_from_that(
        services: Services, zhang: Chat) -> None:
    """The record edited by someone else after the form opened: the save writes the form's
    values over it, the audit naming what it changed from the record as it was then (as
    when the record was read before the write)."""
    user = await user_of(services, "张三")
    cid = await edited_by_another_meanwhile(services, zhang)
    await zhang.press("保存")
    assert "已更新特殊客户档案" in zhang.text
    after = await services.customers.get(user, cid)
    assert after is not None and (after.phone, after.address) == ("13900005678", "城东村3组12号")
    assert [a for a, _ in await audit(services, cid)] == ["create", "edit", "edit"]
    assert (await audit(services, cid))[-1][1] == {
        "address": ["城西村1组1号", "城东村3组12号"], "phone": ["138****1234", "139****5678"]}


async def test_an_edit_audits_what_it_changed_from_the_record_it_opened_on(
        services: Services, zhang: Chat) -> None:
    user = await user_of(services, "张三")
    cid = await add_customer(services, user, "李奶奶", "5500012345", ("medical",), every=30)
    await open_edit_of_phone(zhang, cid, "13900005678")
    await zhang.press("修改")
    await zhang.press("类别")
    await zhang.say("独居")
    await zhang.press("保存")
    assert "已更新特殊客户档案" in zhang.text
    assert (await audit(services, cid))[-1] == ("edit", {
        "phone": ["138****1234", "139****5678"], "categories": [["medical"], ["elderly"]]})
    after = await services.customers.get(user, cid)
    assert after is not None and after.categories == ("elderly",)


@pytest.mark.parametrize("changed", [False, True])
async def test_an_edit_of_a_record_deactivated_since_is_refused(
        services: Services, zhang: Chat, changed: bool) -> None:
    """Read-only once deactivated, even when the edit changes nothing (its 保存 checked it)."""
    user = await user_of(services, "张三")
    cid = await add_customer(services, user, "李奶奶", "5500012345", ("medical",), every=30)
    if changed:
        await open_edit_of_phone(zhang, cid, "13900005678")
    else:
        await zhang.tap(f"-|custedit|{cid}")
    await services.customers.set_active(user, cid, False, services.clock.now(), "已搬迁")
    await zhang.press("保存")
    assert L("customer.readonly") in zhang.text
    assert [a for a, _ in await audit(services, cid)] == ["create", "deactivate"]


async def test_an_edit_form_opened_before_the_record_was_kept_with_it_still_saves(
        services: Services, zhang: Chat) -> None:
    """A form opened by the previous version (no record kept in its meta) reads it."""
    user = await user_of(services, "张三")
    cid = await add_customer(services, user, "李奶奶", "5500012345", ("medical",), every=30)
    await open_edit_of_phone(zhang, cid, "13900005678")
    draft = await services.conversations.get(user.id)
    assert draft is not None and "kept" in draft.state.meta
    del draft.state.meta["kept"]
    await services.conversations.put(draft)
    await zhang.press("保存")
    assert "已更新特殊客户档案" in zhang.text
    assert (await audit(services, cid))[-1] == ("edit", {"phone": ["138****1234",
                                                                   "139****5678"]})


async def test_a_deactivation_of_a_record_no_longer_the_managers_is_refused(
        services: Services, zhang: Chat) -> None:
    """停用 is for the manager of the record's 台区 (or the lead): moved to another 台区 of
    the team after the form opened, the save is refused, naming it; nothing is written."""
    user = await user_of(services, "张三")
    await make_user(services, "王五", areas=("7号台区",))
    cid = await add_customer(services, user, "李奶奶", "5500012345", ("medical",), every=30)
    await zhang.tap(f"-|custoff|{cid}")
    await zhang.say("已搬走")
    await services.db.execute(
        "UPDATE customers SET area_id = (SELECT id FROM areas WHERE name = '7号台区') "
        "WHERE id = ?", (cid,))
    await zhang.press("保存")
    assert L("customer.switch_not_yours_short", area="7号台区") in zhang.text, zhang.text
    c = await services.customers.get(user, cid)
    assert c is not None and c.active
    assert [a for a, _ in await audit(services, cid)] == ["create"]


# --- an edited work log's card: the buttons another feature adds -------------------------
async def edit_log(zhang: Chat, label: str, answer: str) -> None:
    """修改 on log #1: one answer changed, saved."""
    await zhang.tap("-|worklog.logedit|1")
    await zhang.press("修改")
    await zhang.press(label)
    await zhang.say(answer)
    await zhang.press("保存")
    assert L("form.worklog.updated").split("{")[0] in zhang.text


async def test_an_edited_log_offers_what_its_problems_and_its_hazard_call_for(
        services: Services, zhang: Chat) -> None:
    """转为隐患 as soon as an edit names a problem (on PostgreSQL the read that comes with the
    write sees the log as before it: the problem is taken from the answers), and 查看隐患
    once a hazard was made from the log."""
    await zhang.say("今天上午去3号台区巡视了，一切正常")
    await zhang.press("保存")
    assert "🛠 转为隐患" not in buttons(zhang)
    await edit_log(zhang, "发现问题", "2号杆拉线松动")
    assert "🛠 转为隐患" in buttons(zhang), buttons(zhang)
    await zhang.press("转为隐患")
    await zhang.press("一般")
    while not any("保存" in b for b in buttons(zhang)):  # photos, location
        await zhang.press("跳过")
    await zhang.press("保存")
    assert "已登记隐患 #1" in zhang.text
    await edit_log(zhang, "工作内容", "巡视3号台区，2号杆拉线松动")
    assert "🛠 查看隐患 #1" in buttons(zhang) and "🛠 转为隐患" not in buttons(zhang)
