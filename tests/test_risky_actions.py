"""Issue #15 §3 "risky actions need a second thought", through the real Telegram channel on the
fake Bot API, a real SQLite file and the fake clock (T0 = Friday 2026-11-27 10:30 Shanghai):
the cut-off time refused at its step, a medical cut-off approved with a reason, who may
deactivate and restore a special customer, short snoozes for overdue urgent items, and a log
withdrawn by its author within the window."""

# ruff: noqa: F811  (the `team` fixture is imported, then named as a parameter)
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.test_records_telegram import (  # noqa: F401  (team is a fixture)
    OPEN,
    Team,
    add_customer,
    team,
)
from tests.tg_harness import L, Msg, TgUser, body, callback_data, labels, register, texts

pytestmark = pytest.mark.timeout(60)
ARREARS = L("arrears.title", id=1, name="李四")


async def register_arrears(zhang: TgUser) -> None:
    await zhang.say("登记欠费 5500012345 李四 500元 10月1日")
    await zhang.press("否")
    await zhang.press("保存")


# --- 4. the cut-off time is checked at its own step --------------------------------------
async def test_cutoff_before_the_earliest_is_refused_at_the_step(
        team: Team, services: Services) -> None:
    zhang = team.zhang
    await register_arrears(zhang)
    card = (await zhang.press(OPEN))[0]
    await zhang.press(L("btn.arrears_notice"), message=card)
    await zhang.say("11月10日 9:00")
    saved = (await zhang.press("保存"))[0]
    # Served 17 days ago: the notice period is over, so "now", not a past time.
    assert L("arrears.cutoff_from_now", period="7天") in body(saved)
    card = (await zhang.press(OPEN, message=saved))[0]
    r = await zhang.press(L("btn.arrears_cutoff"), message=card)
    assert L("arrears.cutoff_earliest_line", when=L("arrears.cutoff_now_ok")) in texts(r)
    r = await zhang.say("11月15日 9:00")
    assert "⚠️ " + L("arrears.cutoff_before_earliest",
                     when="2026-11-17 周二 09:00") in texts(r)
    assert L("form.arrears_cutoff.at") in texts(r)  # asked again at this step, not the summary
    await zhang.say("11月20日 9:00")
    r = await zhang.press("保存")
    assert L("arrears.cutoff_saved", id=1, when="2026-11-20 周五 09:00") in texts(r)


# --- 3. an overdue urgent item is only put off briefly, and the lead hears of it ---------
SHORT = [L("btn.snooze_minutes", minutes=30), L("btn.snooze_minutes", minutes=60)]


async def test_overdue_emergency_repair_offers_only_a_short_snooze_and_tells_the_lead(
        team: Team, services: Services) -> None:
    zhang = team.zhang
    await zhang.say("报修 3号台区 变压器冒烟")
    await zhang.press("现在")
    await zhang.press("保存")
    got = await team.scan_at(2026, 11, 27, 12, 1)  # arrival due 12:00: overdue
    [overdue] = [m for m in got["张三"] if body(m).startswith("⚠️")]
    assert labels(overdue)[-2:] == SHORT
    assert L("btn.snooze_morning") not in labels(overdue)

    # 明天 8:00 from an old message (forged data): refused, the short ones offered instead.
    data = next(d for d in callback_data(overdue) if "|todo.snz|" in d)
    r = await zhang.tap(overdue["message_id"], re.sub(r":2:\d+$", ":1", data))
    assert L("reminder.snooze_urgent_only") in texts(r) and labels(r[-1]) == SHORT

    r = await zhang.press(SHORT[0], message=overdue)
    assert body(r[-1]) == "\n".join([L("reminder.snoozed", when="2026-11-27 周五 12:31"),
                                     L("reminder.snoozed_lead_told")])
    got = await team.scan_at(2026, 11, 27, 12, 2)
    told = [m for m in got["王班长"] if body(m).startswith("⏰")]
    assert [body(m) for m in told] == [L(
        "reminder.snoozed_lead", name="张三", item=L("repair.title", id=1, area="3号台区"),
        when="2026-11-27 周五 12:31")]
    assert labels(told[0]) == []  # a notice, nothing to snooze
    got = await team.scan_at(2026, 11, 27, 12, 31)
    [again] = [m for m in got["张三"] if body(m).startswith("⚠️")]
    assert labels(again)[-2:] == SHORT


# --- 2. who may deactivate and restore a special customer; deactivated ones are found ----
async def test_only_the_areas_manager_or_the_lead_deactivates_and_restores_a_customer(
        team: Team, services: Services, fake_api: FakeBotAPI) -> None:
    zhang, lead = team.zhang, team.lead
    zhao = await register(fake_api, services, 43, "赵六", areas=("8号台区",))
    await add_customer(services, await team.user("张三"), "李奶奶", "5500077777", ("medical",))

    # 赵六 (another 台区) sees the card, but may not deactivate it: told why, and who can.
    card = (await zhao.say("查客户 李奶奶"))[-1]  # one hit: the card at once
    r = await zhao.press(L("btn.deactivate"), message=card)
    assert body(r[-1]) == L("customer.switch_not_yours", area="3号台区", leads="王班长")
    assert await active_of(services, "5500077777") == 1

    # Its own manager deactivates it, with a reason.
    card = await zhang.say("查客户 李奶奶")
    await zhang.press(L("btn.deactivate"), message=card[-1])
    await zhang.say("已搬走")
    r = await zhang.press("保存")
    assert L("customer.deactivated") in texts(r)
    assert await active_of(services, "5500077777") == 0

    # Found again: 查客户 已停用 lists it; a name search shows it marked 已停用.
    r = await zhao.say("查客户 已停用")
    assert body(r[-1]).splitlines() == [
        L("customers.title_inactive", total=1, first=1, last=1),
        f"• 李奶奶 · 3号台区 · 5500077777 · {L('category.medical')} · "
        + L("customers.inactive_mark")]
    r = await zhao.say("查客户 李奶奶")
    assert L("customers.inactive_mark") in body(r[-1])
    assert labels(r[-1]) == ["李奶奶 5500077777"]

    # Restoring follows the same rule: 赵六 is refused, the lead restores it (audited).
    card = (await zhao.press("李奶奶 5500077777", message=r[-1]))[-1]
    r = await zhao.press(L("btn.reactivate"), message=card)
    assert body(r[-1]) == L("customer.switch_not_yours", area="3号台区", leads="王班长")
    assert await active_of(services, "5500077777") == 0
    card = (await lead.press("李奶奶 5500077777",
                             message=(await lead.say("查客户 已停用"))[-1]))[-1]
    r = await lead.press(L("btn.reactivate"), message=card)
    assert lead.answers()[-1]["text"] == L("customer.reactivated_toast")
    assert labels(r[-1])[-2:] == [L("btn.deactivate"), L("btn.audit")]
    assert await active_of(services, "5500077777") == 1
    rows = await services.db.fetchall(
        "SELECT actor, action FROM audit_log WHERE entity = 'customer' ORDER BY id")
    assert [tuple(x) for x in rows][-2:] == [("张三", "deactivate"), ("王班长", "reactivate")]


async def active_of(services: Services, account: str) -> int:
    row = await services.db.fetchone("SELECT active FROM customers WHERE account_no = ?",
                                     (account,))
    assert row is not None
    return int(row[0])


# --- 5. a log saved by mistake is withdrawn by its author, within the window -------------
async def log_patrol(zhang: TgUser, photo: str | None = None) -> list[Msg]:
    await zhang.say("巡视 3号台区 昨天下午3点 巡视低压线路")
    await zhang.press("跳过")  # problems
    if photo:
        await zhang.photo(photo)
        await zhang.press(L("btn.done"))
    else:
        await zhang.press("跳过")
    await zhang.press("跳过")  # location
    return await zhang.press("保存")


async def count_rows(services: Services, table: str) -> int:
    row = await services.db.fetchone(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


async def test_author_undoes_a_log_within_the_window_then_only_the_lead_deletes(
        team: Team, services: Services) -> None:
    zhang, lead = team.zhang, team.lead
    saved = (await log_patrol(zhang, photo="AgADphoto1"))[0]
    assert L("btn.log_undo") in labels(saved)
    assert await count_rows(services, "worklog_photos") == 1

    # 撤销 asks first; 保留 would keep it. 确定删除: gone, with its photo, audited.
    r = await zhang.press(L("btn.log_undo"), message=saved)
    assert body(r[-1]).splitlines() == [
        L("logs.delete_confirm", id=1, when="2026-11-26 周四 15:00", area="3号台区",
          items="巡视", photos=1),
        L("logs.undo_until", until="2026-11-27 周五 10:40")]
    assert labels(r[-1]) == [L("btn.log_delete_yes"), L("btn.log_keep")]
    r = await zhang.press(L("btn.log_delete_yes"), message=r[-1])
    assert body(r[-1]) == L("logs.deleted", id=1)
    assert [await count_rows(services, t) for t in ("worklogs", "worklog_items",
                                                    "worklog_photos")] == [0, 0, 0]
    row = await services.db.fetchone(
        "SELECT actor, action, json_extract(detail, '$.how') FROM audit_log "
        "WHERE entity = 'worklog'")
    assert row is not None and tuple(row) == ("张三", "delete", "undo")
    assert body((await zhang.say("/logs"))[-1]) == L("logs.none")

    # A second log, 11 minutes later: no 撤销 on its card, the old button says who can.
    saved = (await log_patrol(zhang))[0]
    team.clock.advance(minutes=11)
    card = (await zhang.say("/logs"))[-1]
    card = (await zhang.press(next(x for x in labels(card) if x.startswith("#2")),
                              message=card))[-1]
    assert L("btn.log_undo") not in labels(card) and L("btn.log_delete") not in labels(card)
    r = await zhang.press(L("btn.log_undo"), message=saved)
    assert body(r[-1]) == L("logs.undo_expired", id=2, minutes=10, leads="王班长")
    assert await count_rows(services, "worklogs") == 1

    # The lead may delete it (confirmed, audited); the manager's list is then empty.
    card = (await lead.say("/logs"))[-1]
    card = (await lead.press(next(x for x in labels(card) if x.startswith("#2")),
                             message=card))[-1]
    r = await lead.press(L("btn.log_delete"), message=card)
    assert body(r[-1]) == L("logs.delete_confirm", id=2, when="2026-11-26 周四 15:00",
                            area="3号台区", items="巡视", photos=0)
    await lead.press(L("btn.log_delete_yes"), message=r[-1])
    assert await count_rows(services, "worklogs") == 0
    assert body((await zhang.say("/logs"))[-1]) == L("logs.none")


# --- 1. a cut-off for a medical household: the lead confirms and gives a reason ---------
async def test_lead_approving_a_medical_cutoff_confirms_and_gives_a_reason(
        team: Team, services: Services) -> None:
    zhang, lead = team.zhang, team.lead
    await add_customer(services, await team.user("张三"), "李四", "5500012345", ("medical",))
    await register_arrears(zhang)
    card = (await zhang.press(OPEN))[0]
    await zhang.press(L("btn.arrears_notice"), message=card)
    await zhang.press("现在")
    await zhang.press("保存")
    got = await team.scan_at(2026, 11, 27, 10, 31)
    [ask] = [m for m in got["王班长"] if L("btn.arrears_approve") in labels(m)]

    # 同意停电 is no longer one tap: the register's category, then a reason, then 保存.
    r = await lead.press(L("btn.arrears_approve"), message=ask)
    assert texts(r).startswith(L("arrears.approve_heading", item=ARREARS, owner="张三",
                                 categories=L("category.medical")))
    assert L("form.arrears_approve.reason") in texts(r)
    assert await decision(services) == (None, None)
    r = await lead.say("已上门核实，制氧机已停用，家属同意")
    assert L("btn.save") in labels(r[-1]) and await decision(services) == (None, None)
    r = await lead.press("保存")
    reason_line = L("field.arrears_decision_reason") + "：已上门核实，制氧机已停用，家属同意"
    assert body(r[0]) == "\n".join([L("arrears.decision.saved_approved"), reason_line])
    assert await decision(services) == ("approved", "已上门核实，制氧机已停用，家属同意")

    # Shown on the card, told to the manager, and in the weekly report's arrears sheet.
    card = (await lead.press(OPEN, message=r[0]))[0]
    assert reason_line in body(card).splitlines()
    got = await team.scan_at(2026, 11, 27, 10, 32)
    assert reason_line in texts(got["张三"]).splitlines()
    sheet = await arrears_sheet(lead)
    assert sheet[0][-2:] == [L("report.col.arr.decision"), L("report.col.arr.decision_reason")]
    assert sheet[1][-2:] == [L("report.decision.approved"), "已上门核实，制氧机已停用，家属同意"]


async def arrears_sheet(lead: TgUser) -> list[list[object]]:
    """The rows (header first) of the 欠费 sheet of this week's /report workbook."""
    msgs = await lead.say("/report 本周", timeout=30)
    [doc] = [m for m in msgs if m["method"] == "sendDocument"]
    wb = load_workbook(io.BytesIO(doc["document"]["content"]))
    return [list(r) for r in wb[L("report.sheet.arrears")].iter_rows(values_only=True)]


async def decision(services: Services) -> tuple[str | None, str | None]:
    row = await services.db.fetchone(
        "SELECT lead_decision, lead_decision_reason FROM arrears WHERE id = 1")
    assert row is not None
    return row[0], row[1]
