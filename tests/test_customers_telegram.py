"""特殊客户档案 end to end over Telegram: the real PTB channel (long polling) against the loopback
fake Bot API, on a real SQLite file and a fake clock (T0 = Friday 2026-11-27 10:30 Shanghai).

Two teams: 城东供电所 (manager 张三 with 3号/5号台区, manager 李四 with 7号台区, lead 王班长) and
城西供电所 (manager 赵六 with 9号台区, lead 钱站长). Every test talks to the bot as a user does
(text, button presses, forged callback data) and checks the exact texts (from the locale JSON),
the buttons, and what ended up in the database (customers, categories, audit_log, worklogs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.models import Role, User
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import (
    L,
    Msg,
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

EAST, WEST = "城东供电所", "城西供电所"
SEP = "："
TITLE = L("form.customer.title")  # 特殊客户登记
CATS_LISI = f"{L('category.elderly')}、{L('category.medical')}"  # stored order: by key
YESTERDAY_3PM = "2026-11-26 周四 15:00"
YESTERDAY_3PM_UTC = "2026-11-26T07:00:00+00:00"
LISI_PHONE, LISI_PHONE_MASKED = "13800001234", "138****1234"
LANDLINE, LANDLINE_MASKED = "0551-12345678", "0551-****5678"


def line(key: str, value: str) -> str:
    """One 'label：value' line of a card or a summary, with the label from the locale."""
    return L(key) + SEP + value


def summary(*pairs: tuple[str, str]) -> str:
    return "\n".join([L("form.summary_title", title=TITLE), *(line(k, v) for k, v in pairs)])


def lisi_card(phone: str = LISI_PHONE_MASKED, emergency: str = LANDLINE_MASKED,
              last_visit: str | None = None, extra: tuple[str, ...] = (),
              inactive: str | None = None) -> str:
    """The card of 李四 as `tg_register` enters him (every field filled)."""
    return "\n".join([
        L("customer.card_title", name="李四", account="5500012345"),
        *([L("customer.inactive", reason=inactive)] if inactive else []),
        line("field.area", "3号台区"),
        line("field.address", "城东村3组12号"),
        line("field.phone", phone),
        line("field.categories", CATS_LISI),
        line("field.situation", "家中有制氧机"),
        line("field.emergency_name", f"李小四 {emergency}"),
        line("field.measures", f"{L('customer.every_days', days=30)} · "
                               f"{L('measure.notify_first')}"),
        line("field.last_visit", last_visit or L("customers.never_visited")),
        *extra,
        line("field.registered", "张三 2026-11-27 周五"),
    ])


def warn(key: str, prompt: str, **kw: Any) -> str:
    """An answer refused at a step: the reason, then the step's question again."""
    return "⚠️ " + L(key, **kw) + "\n" + L(prompt)


def one(msgs: list[Msg]) -> Msg:
    """The only message of a reply (no edit of a pressed message either)."""
    assert len(msgs) == 1, texts(msgs)
    return msgs[0]


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture
async def zhang(channel: TelegramChannel, services: Services, fake_api: FakeBotAPI) -> TgUser:
    return await register(fake_api, services, 42, "张三")


@pytest.fixture
async def lisi_mgr(channel: TelegramChannel, services: Services,
                   fake_api: FakeBotAPI) -> TgUser:
    """Another manager of the same team, with 7号台区."""
    return await register(fake_api, services, 43, "李四", areas=("7号台区",))


@pytest.fixture
async def zhao(channel: TelegramChannel, services: Services, fake_api: FakeBotAPI) -> TgUser:
    """A manager of another team (城西供电所, 9号台区)."""
    return await register(fake_api, services, 44, "赵六", team=WEST, areas=("9号台区",))


@pytest.fixture
async def lead(channel: TelegramChannel, services: Services, fake_api: FakeBotAPI,
               zhang: TgUser) -> TgUser:
    return await register(fake_api, services, 50, "王班长", Role.LEAD, areas=())


# --- helpers ------------------------------------------------------------------------------
async def user_of(services: Services, tg: TgUser) -> User:
    user = await services.people.by_identity("telegram", str(tg.chat_id))
    assert user is not None
    return user


async def area_id(services: Services, name: str) -> int:
    row = await services.db.fetchone("SELECT id FROM areas WHERE name = ?", (name,))
    assert row is not None
    return int(row["id"])


async def seed(services: Services, owner: TgUser, account: str, name: str, area: str,
               phone: str = "13900009999", cats: tuple[str, ...] = ("other",),
               **kw: Any) -> int:
    """A customer created through the core (bulk data for lists), audited like any other."""
    data = CustomerData(account, name, await area_id(services, area), "某路1号", phone, cats, **kw)
    return await services.customers.create(await user_of(services, owner), data,
                                           services.clock.now())


async def tg_register(user: TgUser) -> int:
    """李四 (5500012345) registered by typing, every field filled; returns his id."""
    first = await user.say("登记特殊客户 3号台区 李四")
    assert body(first[0]) == "\n".join([
        L("form.prefilled", title=TITLE, values="户名 李四 · 台区 3号台区"),
        L("form.customer.account_no")])
    for text in ("5500012345", "城东村3组12号", "138 0000 1234", "医疗 独居", "家中有制氧机",
                 "李小四", "0551-12345678", "每月"):
        await user.say(text)
    await user.press("☐ 停电优先告知")
    shown = await user.press("完成")
    assert body(shown[0]).startswith(L("form.summary_title", title=TITLE)), texts(shown)
    saved = await user.press("保存")
    assert body(saved[0]) == L("customer.saved", name="李四", account="5500012345")
    return customer_id(saved[0])


def customer_id(saved: Msg) -> int:
    """The customer id behind the 👤 客户档案 button of a 'saved' answer."""
    data = [d for d in callback_data(saved) if d.startswith("-|customers.cust|")]
    assert data, labels(saved)
    return int(data[0].rsplit("|", 1)[1])


async def audit(services: Services, cid: int | None = None) -> list[tuple[str, dict, str]]:
    sql = "SELECT action, detail, actor FROM audit_log WHERE entity = 'customer'"
    params: tuple[Any, ...] = ()
    if cid is not None:
        sql += " AND entity_id = ?"
        params = (cid,)
    rows = await services.db.fetchall(sql + " ORDER BY id", params)
    return [(r["action"], json.loads(r["detail"]), r["actor"]) for r in rows]


async def customer_row(services: Services, cid: int) -> dict[str, Any]:
    row = await services.db.fetchone(
        "SELECT c.*, a.name AS area_name, t.name AS team_name, u.name AS creator "
        "FROM customers c JOIN areas a ON a.id = c.area_id JOIN teams t ON t.id = c.team_id "
        "LEFT JOIN users u ON u.id = c.created_by WHERE c.id = ?", (cid,))
    assert row is not None
    d = dict(row)
    cats = await services.db.fetchall(
        "SELECT category FROM customer_categories WHERE customer_id = ? ORDER BY category",
        (cid,))
    d["categories"] = [c["category"] for c in cats]
    return d


async def count(services: Services, table: str) -> int:
    row = await services.db.fetchone(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


# --- 1. register, every kind of bad input first ---------------------------------------------
async def test_register_rejects_every_bad_input_then_saves_normalised_values(
        zhang: TgUser, lisi_mgr: TgUser, zhao: TgUser, fake_api: FakeBotAPI,
        services: Services) -> None:
    r = await zhang.say("/customer")
    assert [body(m) for m in r] == [L("form.customer.account_no")]
    assert labels(r[0]) == ["✖️ 取消"]

    # 户号: letters, too short, too long; full-width digits with a space are accepted.
    for bad in ("55000abc45", "12345", "55000123456789012"):
        r = await zhang.say(bad)
        assert body(one(r)) == warn("customer.account.invalid", "form.customer.account_no",
                                    text=bad, min=10, max=16)
    r = await zhang.say("５５０００ １２３４５")
    assert body(one(r)) == L("form.customer.name")
    r = await zhang.say("李四")
    assert body(one(r)) == L("form.customer.area")
    assert labels(r[0]) == ["3号台区", "5号台区", "⬅️ 上一步", "✖️ 取消"]

    # 台区: one that exists nowhere, another team's, a teammate's: none is this manager's.
    for bad in ("8号台区", "9号台区", "7号台区"):
        r = await zhang.say(bad)
        assert body(one(r)) == warn("form.customer.area.unknown", "form.customer.area",
                                    text=bad, options="3号台区、5号台区")
    r = await zhang.say("号台区")  # part of both: offered as buttons, not taken (#15)
    assert body(one(r)) == warn("form.did_you_mean", "form.customer.area", text="号台区",
                                options="3号台区、5号台区")
    r = await zhang.press("3号台区")
    assert body(r[0]) == L("form.customer.address")
    await zhang.say("城东村3组12号")

    # 电话: too short, a mobile prefix that does not exist; then a landline with area code.
    for bad in ("12345", "12800001234"):
        r = await zhang.say(bad)
        assert body(one(r)) == warn("customer.phone.invalid", "form.customer.phone", text=bad)
    r = await zhang.say("0551 12345678")
    cat_msg = one(r)
    assert body(cat_msg) == L("form.customer.categories")
    all_cats = [L(f"category.{k}") for k in ("elderly", "left_behind", "disabled", "low_income",
                                              "medical", "important", "service_sensitive",
                                              "arrears_risk", "other")]
    assert labels(cat_msg) == ["☐ " + c for c in all_cats] + ["✔️ 完成", "⬅️ 上一步", "✖️ 取消"]

    # 类别: a word that is no category, then ticks by button, edited in place.
    r = await zhang.say("随便")
    cat_msg = one(r)
    assert body(cat_msg) == warn("customer.categories.unknown", "form.customer.categories",
                                 text="随便", options="、".join(all_cats))
    n_sent, n_edits = len(zhang.sent), len(fake_api.edits(42))
    await zhang.press("☐ " + L("category.medical"))
    await zhang.press("☐ " + L("category.elderly"))
    assert len(zhang.sent) == n_sent  # no new message for a tick
    edits = fake_api.edits(42)[n_edits:]
    assert [(e["method"], e["message_id"]) for e in edits] == [
        ("editMessageText", cat_msg["message_id"])] * 2
    assert "☑ " + L("category.medical") in labels(edits[0])
    assert "☐ " + L("category.elderly") in labels(edits[0])
    assert {"☑ " + L("category.medical"), "☑ " + L("category.elderly")} <= set(labels(edits[1]))
    assert [a["text"] for a in zhang.answers()[-2:]] == [L("form.toggled")] * 2
    r = await zhang.press("完成")
    assert body(r[0]) == L("form.customer.situation")
    assert not has_keyboard(fake_api.bot().chat(42).bot_messages[cat_msg["message_id"]])
    r = await zhang.say("家中有制氧机")

    # The optional fields are skipped with their button.
    for prompt in ("emergency_name", "emergency_phone", "visit_every_days", "measures"):
        assert body(r[0]) == L(f"form.customer.{prompt}")
        assert "⏭ 跳过" in labels(r[0])
        r = await zhang.press("跳过")
    assert body(r[0]) == summary(
        ("field.account_no", "5500012345"), ("field.customer_name", "李四"),
        ("field.area", "3号台区"), ("field.address", "城东村3组12号"),
        ("field.phone", LANDLINE),
        ("field.categories", f"{L('category.medical')}、{L('category.elderly')}"),
        ("field.situation", "家中有制氧机"), ("field.emergency_name", L("form.empty")),
        ("field.emergency_phone", L("form.empty")), ("field.visit_every_days", L("form.empty")),
        ("field.measures", L("form.empty")))
    assert labels(r[0]) == ["✅ 保存", "✏️ 修改", "⬅️ 上一步", "✖️ 取消"]

    r = await zhang.press("保存")
    assert body(r[0]) == L("customer.saved", name="李四", account="5500012345")
    assert labels(r[0]) == [L("btn.customer_card"), L("btn.customer_new")]
    assert zhang.answers()[-1]["text"] == L("form.saved_toast")
    cid = customer_id(r[0])

    row = await customer_row(services, cid)
    assert {k: row[k] for k in (
        "account_no", "name", "area_name", "team_name", "address", "phone", "categories",
        "situation", "emergency_name", "emergency_phone", "visit_every_days", "notify_first",
        "proxy_pay", "active", "last_visit_at", "creator", "created_at")} == {
        "account_no": "5500012345", "name": "李四", "area_name": "3号台区", "team_name": EAST,
        "address": "城东村3组12号", "phone": LANDLINE, "categories": ["elderly", "medical"],
        "situation": "家中有制氧机", "emergency_name": None, "emergency_phone": None,
        "visit_every_days": None, "notify_first": 0, "proxy_pay": 0, "active": 1,
        "last_visit_at": None, "creator": "张三", "created_at": "2026-11-27T02:30:00+00:00"}
    assert await audit(services) == [("create", {"account_no": "5500012345"}, "张三")]
    assert await open_drafts(services) == 0

    # The card from the saved message: the landline is masked.
    card = await zhang.press(L("btn.customer_card"))
    assert line("field.phone", LANDLINE_MASKED) in body(card[0])
    assert LANDLINE not in body(card[0])


async def test_prefill_full_width_phone_back_cancel_and_resume_after_restart(
        zhang: TgUser, zhao: TgUser, channel: TelegramChannel, services: Services,
        settings: Settings, fake_api: FakeBotAPI) -> None:
    # Another team's area in the sentence: noted, and asked again at its step.
    r = await zhang.say("登记特殊客户 9号台区 王五")
    assert body(one(r)) == "\n".join([
        L("form.prefilled", title=TITLE, values="户名 王五"), L("form.customer.account_no")])
    r = await zhang.say("5500012399")
    assert body(one(r)) == "\n".join([
        "⚠️ " + L("form.worklog.area.unknown", text="9号台区", options="3号台区、5号台区"),
        L("form.customer.area")])
    await zhang.press("5号台区")
    await zhang.say("南湖小区3栋")
    phone_prompt = zhang.last

    # The bot restarts mid-form; the next message answers the open step.
    await channel.stop()
    channel2 = await start_channel(services, settings, fake_api)
    try:
        r = await zhang.say("+86 １３８　００００　１２３４")  # full-width digits and spaces
        assert body(one(r)) == L("form.customer.categories")
        # A button on a message from before the restart still works: the form is open.
        r = await zhang.press("上一步", message=phone_prompt)
        assert body(r[0]) == "\n".join([L("form.customer.phone"),
                                        L("form.current_value", value=LISI_PHONE)])
        assert labels(r[0]) == ["⬅️ 上一步", "保持不变", "✖️ 取消"]
        assert not has_keyboard(fake_api.bot().chat(42).bot_messages[phone_prompt["message_id"]])
        await zhang.press("保持不变")
        r = await zhang.press("✖️ 取消")
        assert body(r[0]) == L("form.cancel_confirm",
                               form=f"{TITLE}（5500012399，王五，5号台区）")
        r = await zhang.press("确定放弃")
        assert body(r[0]) == L("form.cancelled", form=TITLE)
        assert await count(services, "customers") == 0
        assert await open_drafts(services) == 0
    finally:
        await channel2.stop()


# --- 2. duplicate 户号 ----------------------------------------------------------------------
async def test_duplicate_account_opens_the_existing_record_for_editing(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    cid = await tg_register(zhang)
    clock.advance(minutes=5)
    await zhang.say("/customer")
    r = await zhang.say("５５００ ０１２３４５")
    assert body(one(r)) == warn("customer.account.duplicate", "form.customer.account_no",
                                account="5500012345", name="李四", area="3号台区")
    assert labels(r[0]) == [L("btn.open_existing"), "✖️ 取消"]

    r = await zhang.press(L("btn.open_existing"))
    opened = body(r[0])
    assert opened == "\n".join([
        L("customer.editing", name="李四", account="5500012345"),
        summary(("field.account_no", "5500012345"), ("field.customer_name", "李四"),
                ("field.area", "3号台区"), ("field.address", "城东村3组12号"),
                ("field.phone", LISI_PHONE_MASKED), ("field.categories", CATS_LISI),
                ("field.situation", "家中有制氧机"), ("field.emergency_name", "李小四"),
                ("field.emergency_phone", LANDLINE_MASKED),
                ("field.visit_every_days", L("customer.every_days", days=30)),
                ("field.measures", L("measure.notify_first")))])
    assert LISI_PHONE not in opened and LANDLINE not in opened  # stored numbers stay masked

    await zhang.press("✏️ 修改")
    r = await zhang.press(L("field.situation"))
    assert body(r[0]) == "\n".join([L("form.customer.situation"),
                                    L("form.current_value", value="家中有制氧机")])
    r = await zhang.say("家中有制氧机，夜间使用")
    assert line("field.situation", "家中有制氧机，夜间使用") in body(r[0])
    r = await zhang.press("保存")
    assert body(r[0]) == L("customer.updated", name="李四", account="5500012345")

    assert await count(services, "customers") == 1
    row = await customer_row(services, cid)
    assert row["situation"] == "家中有制氧机，夜间使用"
    assert (row["phone"], row["emergency_phone"]) == (LISI_PHONE, LANDLINE)  # not the masks
    assert row["updated_at"] == "2026-11-27T02:35:00+00:00"
    assert await audit(services, cid) == [
        ("create", {"account_no": "5500012345"}, "张三"),
        ("edit", {"situation": ["家中有制氧机", "家中有制氧机，夜间使用"]}, "张三")]
    assert await open_drafts(services) == 0


# --- 3. search, paging, card, reveal ---------------------------------------------------------
async def test_search_paging_card_and_reveal_once(zhang: TgUser, services: Services,
                                                   fake_api: FakeBotAPI) -> None:
    cid = await tg_register(zhang)
    wang = await seed(services, zhang, "5500012346", "王五", "5号台区", cats=("important",))
    for i in range(10):
        await seed(services, zhang, f"55000200{i:02d}", f"赵{i:02d}", "5号台区")
    lisi_line = f"• 李四 · 3号台区 · 5500012345 · {CATS_LISI}"
    wang_line = f"• 王五 · 5号台区 · 5500012346 · {L('category.important')}"

    lisi_title = L("customer.card_title", name="李四", account="5500012345")
    wang_title = L("customer.card_title", name="王五", account="5500012346")
    for query, title in [  # one hit: its card at once, not a list of one (#15)
        ("李四", lisi_title), ("3号台区", lisi_title), ("5500012345", lisi_title),
        ("医疗", lisi_title), ("重要客户", wang_title), ("5500012346", wang_title),
    ]:
        r = await zhang.say(f"查客户 {query}")
        assert body(one(r)).startswith(title), query
    assert L("btn.reveal_phone") in labels(r[0])
    r = await zhang.say("查客户 待走访")
    assert body(one(r)) == lisi_card()
    r = await zhang.say("查客户 不存在的人")
    assert body(one(r)) == L("customers.none", text="不存在的人")

    # /customers: 12 records, 8 a page, ◀️ / ▶️.
    zhaos = [f"• 赵{i:02d} · 5号台区 · 55000200{i:02d} · {L('category.other')}"
             for i in range(10)]
    r = await zhang.say("/customers")
    page1 = one(r)
    assert body(page1) == "\n".join([
        L("customers.title", text=L("customers.all"), total=12, first=1, last=8),
        lisi_line, wang_line, *zhaos[:6]])
    assert labels(page1) == ["李四 5500012345", "王五 5500012346",
                             *(f"赵{i:02d} 55000200{i:02d}" for i in range(6)),
                             L("btn.next_page")]
    r = await zhang.press(L("btn.next_page"))
    page2 = r[0]
    assert body(page2) == "\n".join([
        L("customers.title", text=L("customers.all"), total=12, first=9, last=12), *zhaos[6:]])
    assert labels(page2) == [*(f"赵{i:02d} 55000200{i:02d}" for i in range(6, 10)),
                             L("btn.prev_page")]
    r = await zhang.press(L("btn.prev_page"))
    assert body(r[0]) == body(page1)

    # A card from the list: phones masked.
    r = await zhang.press("李四 5500012345", message=page1)
    assert body(one(r)) == lisi_card()
    assert labels(r[0]) == [L("btn.reveal_phone"), L("btn.reveal_emergency"), "✏️ 修改",
                            L("btn.record_visit"), L("btn.deactivate")]
    assert LISI_PHONE not in body(r[0])

    # 显示电话: the full number once, the emergency number still masked; audited.
    r = await zhang.press(L("btn.reveal_phone"))
    assert body(one(r)) == lisi_card(phone=LISI_PHONE)
    assert zhang.answers()[-1]["text"] == L("customer.revealed_toast")
    assert labels(r[0]) == [L("btn.reveal_emergency"), "✏️ 修改", L("btn.record_visit"),
                            L("btn.deactivate")]
    r = await zhang.press(L("btn.reveal_emergency"))
    assert body(one(r)) == lisi_card(emergency=LANDLINE)
    assert await audit(services, cid) == [
        ("create", {"account_no": "5500012345"}, "张三"),
        ("reveal", {"field": "phone"}, "张三"),
        ("reveal", {"field": "emergency_phone"}, "张三")]

    # The next view of the card is masked again; viewing writes nothing.
    r = await zhang.press("李四 5500012345", message=page1)
    assert body(one(r)) == lisi_card()
    assert len(await audit(services, cid)) == 3
    assert [a for a, _, _ in await audit(services, wang)] == ["create"]


# --- a visit sentence naming a registered customer (#15) ----------------------------------
async def test_a_visit_sentence_naming_a_special_customer_offers_to_link_it(
        zhang: TgUser, services: Services) -> None:
    granny = await seed(services, zhang, "5500020001", "李奶奶", "5号台区")
    chen3 = await seed(services, zhang, "5500020002", "陈国强", "3号台区")
    chen5 = await seed(services, zhang, "5500020003", "陈国强", "5号台区")
    # One match: one tap links it, and fills the area from the customer's record.
    r = await zhang.say("走访 李奶奶")
    assert L("form.worklog.visit_offer", name="李奶奶") in body(r[0])
    assert labels(r[0])[0] == L("btn.visit_link", name="李奶奶")
    r = await zhang.press(L("btn.visit_link", name="李奶奶"))
    assert body(r[0]) == "\n".join([
        L("customer.visiting", name="李奶奶", account="5500020001"),
        L("form.worklog.time"), L("form.worklog.time.hint")])
    await zhang.press("现在")
    for _ in range(3):
        r = await zhang.press("跳过")
    assert "台区：5号台区" in body(r[0]) and "工作内容：李奶奶" in body(r[0])
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["customer_id"] == granny
    assert (await customer_row(services, granny))["last_visit_at"] is not None
    # Namesakes: a short choice; the area said narrows it to one.
    r = await zhang.say("回访陈国强")
    assert L("form.worklog.visit_pick", name="陈国强", count=2) in body(r[0])
    assert labels(r[0])[:2] == ["陈国强（3号台区，户号尾号 0002）",
                                "陈国强（5号台区，户号尾号 0003）"]
    r = await zhang.press("陈国强（5号台区")
    assert body(r[0]).startswith(L("customer.visiting", name="陈国强", account="5500020003"))
    assert (await services.conversations.get(1)).state.meta["customer_id"] == chen5
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    r = await zhang.say("走访5号台区陈国强")
    assert L("form.worklog.visit_offer", name="陈国强") in body(r[0])
    r = await zhang.press(L("btn.visit_link", name="陈国强"))
    assert (await services.conversations.get(1)).state.meta["customer_id"] == chen5 != chen3
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    # Nobody registered by that name: the log goes on as today, nothing offered.
    r = await zhang.say("走访 王大爷")
    assert "👤" not in body(r[0]) and "🔗" not in " ".join(labels(r[0]))
    assert body(r[0]).endswith(L("form.worklog.area"))


# --- 4. a visit from the card ------------------------------------------------------------
async def test_visit_from_the_card_links_the_worklog_and_leaves_the_due_list(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    cid = await tg_register(zhang)
    r = await zhang.say("查客户 待走访")  # one due: its card at once
    assert body(r[0]).startswith(L("customer.card_title", name="李四", account="5500012345"))

    r = await zhang.press(L("btn.record_visit"))
    assert body(one(r)) == "\n".join([L("customer.visiting", name="李四", account="5500012345"),
                                      L("form.worklog.time"), L("form.worklog.time.hint")])
    assert labels(r[0]) == ["🕒 现在", "✖️ 取消"]
    r = await zhang.say("昨天下午3点")
    assert body(one(r)) == L("form.worklog.content")
    await zhang.say("检查制氧机供电，告知停电通知渠道")
    await zhang.press("跳过")
    await zhang.press("跳过")
    r = await zhang.press("跳过")
    assert body(r[0]) == "\n".join([
        L("form.summary_title", title=L("form.worklog.title")), "工作项目：走访",
        "台区：3号台区", f"时间：{YESTERDAY_3PM}", "工作内容：检查制氧机供电，告知停电通知渠道",
        # The customer visited now shows on the summary (issue #13 §5: 涉及客户).
        "发现问题：（无）", "涉及客户：李四（3号台区，户号尾号 2345）", "照片：（无）",
        "位置：（无）"])
    r = await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert body(r[0]) == L("form.worklog.saved", id=row["id"], when=YESTERDAY_3PM,
                           area="3号台区", items="走访")
    assert (row["customer_id"], row["items"], row["area_name"], row["user_name"],
            row["occurred_at"]) == (cid, ["visit"], "3号台区", "张三", YESTERDAY_3PM_UTC)
    assert (await customer_row(services, cid))["last_visit_at"] == YESTERDAY_3PM_UTC

    r = await zhang.say("查客户 待走访")
    assert body(one(r)) == L("customers.none_due")
    r = await zhang.say("查客户 李四")  # one hit: the card at once
    assert body(one(r)) == lisi_card(last_visit="2026-11-26 周四", extra=(
        L("customer.visit_next", when="2026-12-26 周六"),))

    # A month later he is due again, and the card says it is overdue.
    clock.advance(days=31)
    r = await zhang.say("查客户 待走访")  # one due: its card at once (#15)
    assert body(one(r)) == lisi_card(last_visit="2026-11-26 周四", extra=(
        L("customer.visit_overdue", when="2026-12-26 周六"),))


# --- 5. deactivate, reactivate --------------------------------------------------------------
async def test_deactivate_with_reason_keeps_history_and_reactivates(
        zhang: TgUser, services: Services, clock: FakeClock) -> None:
    cid = await tg_register(zhang)
    await zhang.say("查客户 李四")  # one hit: the card at once
    r = await zhang.press(L("btn.deactivate"))
    assert body(one(r)) == "\n".join([
        L("customer.deactivating", name="李四", account="5500012345"),
        L("form.customer_off.reason")])
    r = await zhang.say("已搬迁")
    assert body(one(r)) == "\n".join([
        L("form.summary_title", title=L("form.customer_off.title")), line("field.reason",
                                                                          "已搬迁")])
    clock.advance(minutes=10)
    r = await zhang.press("保存")
    assert body(r[0]) == L("customer.deactivated")

    # Searches still find it, marked 已停用 (issue #15 §3: they answered "none" before);
    # it is never due for a visit.
    for query in ("李四", "5500012345", "3号台区", "医疗"):
        r = await zhang.say(f"查客户 {query}")
        assert body(one(r)).splitlines() == [
            L("customers.inactive_only", count=1, text=query),
            f"• 李四 · 3号台区 · 5500012345 · {L('category.elderly')}、{L('category.medical')}"
            " · " + L("customers.inactive_mark")], query
        assert labels(one(r)) == ["李四 5500012345"]
    r = await zhang.say("查客户 待走访")
    assert body(one(r)) == L("customers.none_due", text="待走访")
    r = await zhang.press(L("btn.customer_new"))  # the "none" answer offers to register
    assert body(one(r)) == L("form.customer.account_no")
    await zhang.say("/cancel")
    await zhang.press("确定放弃")

    r = await zhang.press(L("btn.customer_card"))  # on the "deactivated" answer
    assert body(one(r)) == lisi_card(inactive="已搬迁")
    # Read-only until reactivated: no reveal, no edit offered ...
    assert labels(r[0]) == [L("btn.reactivate")]
    # ... and old or forged presses are refused with the stale-button toast, audit unchanged.
    for action in ("reveal", "revealE", "custedit"):
        r = await zhang.tap(zhang.last["message_id"], f"-|{action}|{cid}")
        assert zhang.answers()[-1]["text"] == L("button.stale"), action
        assert body(r[0]) == L("customer.readonly"), action
        assert "13800001234" not in texts(r) and "12345678" not in texts(r), action
    assert await open_drafts(services) == 0
    # A deactivated customer takes no visit and no second deactivation, even by old buttons.
    for action in ("custvisit", "custoff"):
        r = await zhang.tap(zhang.last["message_id"], f"-|{action}|{cid}")
        assert body(one(r)) == L("customer.not_found"), action
    # The 户号 stays taken: registering it again offers the (deactivated) record.
    await zhang.say("/customer")
    r = await zhang.say("5500012345")
    assert body(one(r)) == warn("customer.account.duplicate", "form.customer.account_no",
                                account="5500012345", name="李四", area="3号台区")
    await zhang.say("/cancel")
    await zhang.press("确定放弃")

    row = await customer_row(services, cid)
    assert (row["active"], row["deactivated_reason"], row["deactivated_at"]) == (
        0, "已搬迁", "2026-11-27T02:40:00+00:00")
    assert await count(services, "customers") == 1
    assert await audit(services, cid) == [("create", {"account_no": "5500012345"}, "张三"),
                                          ("deactivate", {"reason": "已搬迁"}, "张三")]

    r = await zhang.tap(zhang.last["message_id"], f"-|cust|{cid}")
    r = await zhang.press(L("btn.reactivate"))
    assert body(one(r)) == lisi_card()
    r = await zhang.say("查客户 李四")
    assert body(one(r)) == lisi_card()  # one hit: the card at once (#15)
    row = await customer_row(services, cid)
    assert (row["active"], row["deactivated_reason"], row["deactivated_at"]) == (1, None, None)
    assert [a for a, _, _ in await audit(services, cid)] == ["create", "deactivate",
                                                             "reactivate"]
    assert await open_drafts(services) == 0


# --- 6. the audit history: leads only ---------------------------------------------------------
async def test_lead_sees_the_audit_history_from_the_card_a_manager_is_refused(
        zhang: TgUser, lead: TgUser, services: Services, clock: FakeClock) -> None:
    cid = await tg_register(zhang)
    clock.advance(minutes=5)
    await zhang.tap(zhang.last["message_id"], f"-|custedit|{cid}")
    await zhang.press("✏️ 修改")
    await zhang.press(L("field.situation"))
    await zhang.say("家中有制氧机，夜间使用")
    await zhang.press("保存")
    clock.advance(minutes=5)

    r = await lead.say("查客户 李四")  # one hit: the card at once
    assert labels(one(r))[-2:] == [L("btn.deactivate"), L("btn.audit")]
    await lead.press(L("btn.reveal_phone"))
    clock.advance(minutes=5)
    await zhang.tap(zhang.last["message_id"], f"-|custoff|{cid}")
    await zhang.say("已搬迁")
    await zhang.press("保存")

    r = await lead.press(L("btn.audit"))
    assert body(one(r)) == "\n".join([
        L("customer.audit_title", name="李四", account="5500012345"),
        f"• 2026-11-27 周五 10:45 张三 {L('audit.deactivate')} 已搬迁",
        f"• 2026-11-27 周五 10:40 王班长 {L('audit.reveal')} {L('field.phone')}",
        f"• 2026-11-27 周五 10:35 张三 {L('audit.edit')} "
        f"{L('field.situation')}: 家中有制氧机 → 家中有制氧机，夜间使用",
        f"• 2026-11-27 周五 10:30 张三 {L('audit.create')}"])
    assert labels(r[0]) == [L("btn.customer_card")]
    assert LISI_PHONE not in body(r[0])

    # A manager has no audit button on the card, and a forged one is refused.
    r = await zhang.tap(zhang.last["message_id"], f"-|cust|{cid}")
    assert L("btn.audit") not in labels(one(r))
    r = await zhang.tap(zhang.last["message_id"], f"-|custlog|{cid}")
    assert body(one(r)) == L("customer.audit_leads_only")
    assert "家中有制氧机" not in body(r[0])


# --- 7. another team: nothing, even with forged buttons ---------------------------------------
async def test_another_team_sees_nothing_even_with_forged_callback_data(
        zhang: TgUser, zhao: TgUser, services: Services, fake_api: FakeBotAPI) -> None:
    cid = await tg_register(zhang)
    west_lead = await register(fake_api, services, 51, "钱站长", Role.LEAD, team=WEST,
                               areas=())
    secrets_ = ("李四", "5500012345", "城东村3组12号", "1380000", LISI_PHONE_MASKED, "0551",
                "制氧机", "李小四")

    def leaks(msgs: list[Msg]) -> list[str]:
        shown = texts(msgs) + " ".join(" ".join(labels(m)) for m in msgs)
        return [s for s in secrets_ if s in shown]

    for query in ("5500012345", "550001", "城东村", "3号台区", "李", "待走访", "医疗"):
        r = await zhao.say(f"查客户 {query}")
        key = "customers.none_due" if query == "待走访" else "customers.none"
        assert body(one(r)) == L(key, text=query), query
    r = await zhao.say("/customers")
    assert "李四" not in body(one(r))
    r = await zhao.say("查客户 医疗")  # the last search, which ◀️/▶️ would page through

    msg_id = zhao.greeting[-1]["message_id"]
    for action in ("cust", "reveal", "revealE", "custedit", "custvisit", "custoff", "custon"):
        r = await zhao.tap(msg_id, f"-|{action}|{cid}")
        assert [body(m) for m in r] == [L("customer.not_found")], action
        assert not leaks(r), (action, leaks(r))
    r = await zhao.tap(msg_id, f"-|custlog|{cid}")
    assert [body(m) for m in r] == [L("customer.audit_leads_only")]
    r = await zhao.tap(msg_id, "-|custp|0")
    assert [body(m) for m in r] == [L("customers.none", text="医疗")]
    assert not any(zhao_answer["text"] == L("customer.revealed_toast")
                   for zhao_answer in zhao.answers())
    # The other team's lead (who may read audit trails) gets nothing either.
    for action in ("custlog", "cust", "reveal", "revealE"):
        r = await west_lead.tap(west_lead.greeting[-1]["message_id"], f"-|{action}|{cid}")
        assert [body(m) for m in r] == [L("customer.not_found")], action

    # A form-token button forged on the other team's own draft: 打开已有档案 of our customer.
    r = await zhao.say("/customer")
    token = callback_data(r[0])[0].split("|", 1)[0]
    r = await zhao.tap(r[0]["message_id"], f"{token}|dup_open|{cid}")
    assert body(r[0]) == "\n".join([L("customer.not_found"), L("form.customer.account_no")])
    assert not leaks(r)
    # The same 户号 in another team is another customer, not a duplicate.
    r = await zhao.say("5500012345")
    assert body(one(r)) == L("form.customer.name")
    await zhao.say("/cancel")
    await zhao.press("确定放弃")

    assert not leaks(west_lead.sent[len(west_lead.greeting):])
    assert await audit(services) == [("create", {"account_no": "5500012345"}, "张三")]
    row = await customer_row(services, cid)
    assert (row["active"], row["situation"], row["last_visit_at"]) == (1, "家中有制氧机", None)
    assert await count(services, "worklogs") == 0
    assert await open_drafts(services) == 0


# --- bugs these tests found, fixed: kept as regression tests -------------------------------
async def test_register_phrase_special_customer_register_opens_the_form(
        zhang: TgUser) -> None:
    r = await zhang.say("特殊客户登记 3号台区 王五")
    assert body(one(r)) == "\n".join([
        L("form.prefilled", title=TITLE, values="户名 王五 · 台区 3号台区"),
        L("form.customer.account_no")])


async def test_reveal_of_a_missing_emergency_phone_is_not_audited(
        zhang: TgUser, services: Services) -> None:
    cid = await seed(services, zhang, "5500012399", "王五", "3号台区")
    r = await zhang.tap(zhang.greeting[-1]["message_id"], f"-|cust|{cid}")
    assert L("btn.reveal_emergency") not in labels(r[0])  # no such number, no button
    # ... but a stale or forged one: nothing was revealed, so nothing may be audited.
    r = await zhang.tap(zhang.greeting[-1]["message_id"], f"-|revealE|{cid}")
    assert [a for a, _, _ in await audit(services, cid)] == ["create"]
    assert body(r[0]) != L("customer.not_found")  # the customer is the user's own team's


async def test_audit_history_shows_readable_old_and_new_values(
        zhang: TgUser, lead: TgUser, services: Services) -> None:
    cid = await seed(services, zhang, "5500012399", "王五", "3号台区")
    await zhang.tap(zhang.greeting[-1]["message_id"], f"-|custedit|{cid}")
    for step in ("✏️ 修改", L("field.area"), "5号台区", "✏️ 修改", L("field.categories"),
                 "☐ " + L("category.important"), "完成", "✏️ 修改", L("field.measures"),
                 "☐ " + L("measure.proxy_pay"), "完成", "保存"):
        await zhang.press(step)
    assert [a for a, _, _ in await audit(services, cid)] == ["create", "edit"]
    r = await lead.tap(lead.greeting[-1]["message_id"], f"-|custlog|{cid}")
    history = body(one(r))
    assert f"{L('field.area')}: 3号台区 → 5号台区" in history, history
    assert "field." not in history and "important" not in history and "True" not in history


async def test_stale_next_page_after_the_list_shrank(zhang: TgUser, services: Services) -> None:
    ids = [await seed(services, zhang, f"55000200{i:02d}", f"赵{i:02d}", "5号台区")
           for i in range(9)]
    r = await zhang.say("/customers")
    page1 = one(r)
    assert L("btn.next_page") in labels(page1)
    assert await services.customers.set_active(await user_of(services, zhang), ids[0], False,
                                               services.clock.now(), "已销户")
    r = await zhang.press(L("btn.next_page"), message=page1)
    shown = body(r[0])
    assert "第 9–8 户" not in shown, shown
    assert "• 赵08" in shown


async def test_manager_edits_a_teammates_customer_without_moving_it(
        zhang: TgUser, lisi_mgr: TgUser, services: Services) -> None:
    cid = await seed(services, lisi_mgr, "5500077777", "陈七", "7号台区")
    r = await zhang.say("查客户 陈七")  # one hit: the card at once
    assert "✏️ 修改" in labels(one(r))  # the card offers to edit
    r = await zhang.press("✏️ 修改")
    assert line("field.area", "7号台区") in body(r[0]), body(r[0])
    await zhang.press("✏️ 修改")
    await zhang.press(L("field.situation"))
    await zhang.say("独居，耳背")
    r = await zhang.press("保存")
    assert body(r[0]) == L("customer.updated", name="陈七", account="5500077777")
    row = await customer_row(services, cid)
    assert (row["area_name"], row["situation"]) == ("7号台区", "独居，耳背")


async def test_empty_register_list_has_no_empty_quotes(zhao: TgUser) -> None:
    r = await zhao.say("/customers")
    assert "「」" not in body(one(r))


async def test_phone_typed_entirely_in_full_width_is_accepted(zhang: TgUser) -> None:
    await zhang.say("登记特殊客户 3号台区 王五")
    await zhang.say("5500012399")
    await zhang.say("南湖小区3栋")
    r = await zhang.say("０５５１－１２３４５６７８")
    assert body(one(r)) == L("form.customer.categories")
    await zhang.press("上一步")
    r = await zhang.say("＋８６ １３８－００００－１２３４")
    assert body(one(r)) == L("form.customer.categories")
