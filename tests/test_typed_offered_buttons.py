"""Buttons a form shows besides its step's keyboard (a refusal's 「📂 打开已有档案」, the
「你是不是要找」 names, the namesakes to pick from, a long list's ◀️ ▶️, the "new request?"
question) do what tapping does when their label is typed: on WeCom and in the local chat a
manager sees them as text or numbers and types what he sees. Every label from the locales."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest

from bot.assistant import Assistant
from bot.channels.telegram import TELEGRAM_CAPS, TelegramChannel
from bot.channels.terminal import run_terminal
from bot.channels.wecom.channel import WeComChannel
from bot.models import Role
from bot.services import Services
from tests.conftest import Chat, make_user
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom, Sent
from tests.test_saves_read_at_write import fill_register_form, user_of
from tests.test_todo_lists import add_customer
from tests.test_worklog_fuller import add_customer as add_named_customer
from tests.tg_harness import L
from tests.wecom_harness import WcUser, labels, start_wecom, texts

pytestmark = pytest.mark.both_backends  # the offered buttons are kept with the form's draft

AREAS = tuple(f"{i}号台区" for i in range(1, 16))


def en(key: str, **kwargs: object) -> str:
    return L(key, locale="en", **kwargs)


async def _duplicate_at_the_account_step(zhang: Chat, services: Services,
                                         label: str = L("btn.open_existing")) -> None:
    await add_customer(services, await user_of(services, "张三"), "李奶奶", "5500012345",
                       (), None)
    await zhang.say("/customer")
    await zhang.say("5500012345")
    assert label in zhang.buttons


@pytest.mark.parametrize("typed", ["打开已有档案", "📂 打开已有档案"])
async def test_open_existing_typed_opens_the_record(zhang: Chat, services: Services,
                                                    typed: str) -> None:
    await _duplicate_at_the_account_step(zhang, services)
    await zhang.say(typed)  # not a 户号: the button it names
    assert L("customer.editing", name="李奶奶", account="5500012345") in zhang.text


async def test_open_existing_typed_in_english(zhang: Chat, services: Services) -> None:
    await zhang.say("/lang en")
    await _duplicate_at_the_account_step(zhang, services, en("btn.open_existing"))
    await zhang.say("open the existing record")
    assert en("customer.editing", name="李奶奶", account="5500012345") in zhang.text


async def test_a_number_registered_meanwhile_offers_and_takes_open_existing(
        services: Services, zhang: Chat) -> None:
    """Refused at 保存 (another manager registered it since): the button is shown, and
    typed it opens that record, as it does at the 户号 step."""
    await make_user(services, "王五")
    await fill_register_form(zhang)
    await add_customer(services, await user_of(services, "王五"), "赵奶奶", "5500012345", (),
                       None)
    await zhang.press("保存")
    assert L("btn.open_existing") in zhang.buttons
    await zhang.say("打开已有档案")
    assert L("customer.editing", name="赵奶奶", account="5500012345") in zhang.text


async def test_the_offered_button_is_only_for_the_next_message(zhang: Chat,
                                                               services: Services) -> None:
    """Once the step is asked again without it, its label is what it always was: here a
    户号 that is not one."""
    await _duplicate_at_the_account_step(zhang, services)
    await zhang.say("123")  # too short: the step asked again, the button gone
    assert L("btn.open_existing") not in zhang.buttons
    await zhang.say("打开已有档案")
    assert "修改特殊客户档案" not in zhang.text and "户号" in zhang.text


async def test_a_did_you_mean_name_typed_keeps_the_names_understood(
        services: Services, assistant: Assistant) -> None:
    await make_user(services, "张三")
    await make_user(services, "李四")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    lead = Chat(assistant, "test", "王班长")
    await lead.say("派任务 李四、张山 明天下午3点 清点表箱")
    assert "你是不是要找：张三" in lead.text and "张三" in lead.buttons
    await lead.say("张三")  # as tapping it does: 李四 kept, 张三 added
    assert "派给：李四、张三" in lead.text, lead.text
    await lead.say("取消")  # the form's own ✖️ 取消, typed: asks first
    assert "确定放弃" in lead.buttons
    await lead.say("确定放弃")
    assert L("form.cancelled", form=L("form.task.title")) in lead.text


async def test_a_namesake_typed_is_picked(zhang: Chat, services: Services) -> None:
    await add_named_customer(services, "张三", "陈国强", "5500020002", "3号台区")
    await add_named_customer(services, "张三", "陈国强", "5500020003", "5号台区")
    await zhang.say("客户服务 3号台区 检查表箱接线")
    for label in ("现在", "跳过", "跳过", "跳过", "➕ 涉及客户"):
        await zhang.press(label)
    await zhang.say("陈国强")
    label = L("btn.visit_link_one", name="陈国强", area="5号台区", tail="0003")
    assert label in zhang.buttons
    await zhang.say(label)
    assert "涉及客户：陈国强（5号台区，户号尾号 0003）" in zhang.text


async def test_a_new_request_question_answered_by_typing(zhang: Chat) -> None:
    await zhang.say("记录巡视")
    await zhang.say("查客户 李四")  # a new request inside the form: asked what to do
    assert L("btn.park_new") in zhang.buttons
    await zhang.say("先放一边")  # not a 台区: the search is done, the form waits
    assert "没有找到「李四」" in zhang.text and "⚠️" not in zhang.text
    assert zhang.text.endswith("在哪个台区？")


# --- a long choice list, paged --------------------------------------------------------
@pytest.fixture
async def many_areas(services: Services) -> Chat:
    core = Assistant(services)
    core.register_channel("test", TELEGRAM_CAPS)
    await make_user(services, "张三", areas=AREAS)
    return Chat(core, "test", "张三")


async def test_next_and_previous_page_typed(many_areas: Chat) -> None:
    zhang = many_areas
    await zhang.say("记录巡视")
    assert "12号台区" in zhang.buttons and "13号台区" not in zhang.buttons
    await zhang.say("下一页")  # pages as ▶️ does; a new message (none was pressed to edit)
    assert zhang.last is not None and zhang.last.edit is None
    assert "13号台区" in zhang.buttons and "1号台区" not in zhang.buttons
    await zhang.say("上一页")
    assert "1号台区" in zhang.buttons and "13号台区" not in zhang.buttons
    await zhang.say("下一页 ▶️")  # copied with its arrow
    assert "13号台区" in zhang.buttons
    await zhang.say("14号台区")  # a choice typed is still a choice
    assert "什么时候做的" in zhang.text


async def test_next_page_typed_in_english(many_areas: Chat) -> None:
    zhang = many_areas
    await zhang.say("/lang en")
    await zhang.say("记录巡视")
    assert en("btn.next_page") in zhang.buttons
    await zhang.say("next")
    assert "13号台区" in zhang.buttons and "1号台区" not in zhang.buttons
    await zhang.say("previous")  # also the 上一步 word: the page is what is on screen
    assert "1号台区" in zhang.buttons and "13号台区" not in zhang.buttons


async def test_next_page_typed_on_the_last_page_is_an_answer(many_areas: Chat) -> None:
    """No ▶️ on the last page: 下一页 is not a button there (and no 台区 either)."""
    zhang = many_areas
    await zhang.say("记录巡视")
    await zhang.say("下一页")
    assert en("btn.next_page") not in zhang.buttons and L("btn.next_page") not in zhang.buttons
    await zhang.say("下一页")
    assert "13号台区" in zhang.buttons and "⚠️" in zhang.text


# --- the local chat ---------------------------------------------------------------------
async def _terminal(services: Services, lines: list[str]) -> str:
    out = io.StringIO()
    code = await run_terminal(services, "张三", demo=True, inp=io.StringIO(
        "".join(line + "\n" for line in [*lines, "/quit"])), out=out, reminders=False)
    assert code == 0
    return out.getvalue()


async def test_local_chat_takes_a_typed_page_and_open_existing(services: Services) -> None:
    said = await _terminal(services, [
        "登记特殊客户", "3100099001", "王大爷", "3号台区", "幸福路1号", "13800138000",
        "独居老人", "家中有制氧机", "跳过", "跳过", "跳过", "跳过", "保存",
        "登记特殊客户", "3100099001", "打开已有档案"])
    assert "修改特殊客户档案：王大爷" in said, said


async def test_local_chat_pages_a_long_list_typed(services: Services) -> None:
    await _terminal(services, [])  # the demo team
    demo = next(u for u in await services.people.users() if u.name == "王班长")
    async with services.db.tx() as tx:
        for name in AREAS:
            await services.people.ensure_area(tx, demo.team_id, name, services.clock.now())
    out = io.StringIO()
    lines = ["记录巡视", "下一页", "/quit"]
    code = await run_terminal(services, "王班长", inp=io.StringIO(
        "".join(line + "\n" for line in lines)), out=out, reminders=False)
    assert code == 0
    asked = out.getvalue().split("在哪个台区")[-1]  # what followed the question: page 2
    assert "13号台区" in asked and "[1] 1号台区" not in asked, asked


# --- WeCom: buttons as a card (up to six) or as numbered text ------------------------------
@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f


@pytest.fixture
async def wecom(services: Services, fake: FakeWeCom) -> AsyncIterator[WeComChannel]:
    ch = await start_wecom(services, fake)
    yield ch
    await ch.stop()


async def test_wecom_open_existing_typed(services: Services, fake: FakeWeCom,
                                         wecom: WeComChannel) -> None:
    user = await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    await add_customer(services, user, "李奶奶", "5500012345", (), None)
    zhang = WcUser(fake, wecom, "zhangsan")
    await zhang.say("/customer")
    r = await zhang.say("5500012345")
    assert L("btn.open_existing") in [b for m in r for b in labels(m)]
    r = await zhang.say("打开已有档案")  # what the card says, typed
    assert L("customer.editing", name="李奶奶", account="5500012345") in texts(r)


async def test_wecom_next_page_typed(services: Services, fake: FakeWeCom,
                                     wecom: WeComChannel) -> None:
    await make_user(services, "张三", areas=AREAS, channel="wecom", external_id="zhangsan")
    zhang = WcUser(fake, wecom, "zhangsan")
    r = await zhang.say("记录巡视")
    assert "12. 12号台区" in seen(r) and "13号台区" not in seen(r)  # numbered: over six
    r = await zhang.say("下一页")  # page 2: a card of 13–15号台区 and ◀️ 上一页
    assert "13号台区" in seen(r) and "12号台区" not in seen(r)
    r = await zhang.say("上一页")
    assert "12. 12号台区" in seen(r) and "13号台区" not in seen(r)


def seen(msgs: list[Sent]) -> str:
    """Texts, card titles and card buttons, as the member reads them."""
    return "\n".join([texts(msgs), *(label for m in msgs for label in labels(m))])


# --- no form open: the latest answer's buttons ---------------------------------------------
async def test_cancel_typed_under_an_import_preview_cancels_it(services: Services,
                                                               assistant: Assistant) -> None:
    """取消 typed under the arrears list's preview does what its 取消 button does, instead of
    「没有正在填写的表单」 with the list still waiting."""
    from tests.arrears_files import gbk_csv
    from tests.test_arrears_import import FIRST

    await make_user(services, "王班长", Role.LEAD, areas=())
    lead = Chat(assistant, "test", "王班长")
    await lead.file("a.csv", gbk_csv(FIRST[:2]))
    assert L("btn.arrimp_cancel") in lead.buttons
    await lead.say("取消")
    assert lead.text == L("arrimp.cancelled")
    await lead.say("确认导入")  # its preview is gone: the button it was is stale now
    assert L("arrimp.was_cancelled") in lead.text


async def test_a_delete_confirmed_by_typing(zhang: Chat) -> None:
    """A work log's 撤销 asks first; 确定删除 typed deletes it, as its button does."""
    await zhang.say("巡视 3号台区 刚才 检查台区")
    for _ in range(3):
        await zhang.say("跳过")
    await zhang.say("保存")
    assert L("btn.log_undo") in zhang.buttons
    await zhang.say("撤销")
    assert L("btn.log_delete_yes") in zhang.buttons
    await zhang.say("确定删除")
    assert L("logs.deleted", id=1) in zhang.text



async def _delete_question(chat: Chat, n: int) -> None:
    await chat.say("巡视 3号台区 刚才 检查台区")
    for _ in range(3):
        await chat.say("跳过")
    await chat.say("保存")
    await chat.say("撤销")
    assert L("btn.log_delete_yes") in chat.buttons, n


async def test_a_typed_label_makes_the_round_trips_its_tap_makes(zhang: Chat,
                                                                 services: Services) -> None:
    """The button a typed label stands for declares its reads as for a tap (issue #12)."""
    from tests.test_round_trips import counted

    await _delete_question(zhang, 1)
    _, tapped = await counted(services, lambda: zhang.press(L("btn.log_delete_yes")))
    assert L("logs.deleted", id=1) in zhang.text
    await _delete_question(zhang, 2)
    _, typed = await counted(services, lambda: zhang.say("确定删除"))
    assert L("logs.deleted", id=2) in zhang.text
    assert typed == tapped


async def test_telegram_next_page_typed_is_sent(channel: TelegramChannel, services: Services,
                                                fake_api: FakeBotAPI) -> None:
    """Through the real channel: a page turned by typing has no pressed message to edit,
    so it comes as a new message (it was dropped)."""
    from tests.tg_harness import labels as tg_labels
    from tests.tg_harness import register

    zhang = await register(fake_api, services, 42, "张三", areas=AREAS)
    await zhang.say("记录巡视")
    r = await zhang.say("下一页")
    assert r and "13号台区" in tg_labels(r[-1]) and "1号台区" not in tg_labels(r[-1])
