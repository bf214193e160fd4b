"""Misuse and bad input (issue #8): phone numbers masked in the audit trail (and by the
migration), a per-person reveal limit that tells the lead once, invite guessing throttled in
the database per chat and overall, locations off the Earth refused, a deactivated user's
reminders forwarded to the lead, a deactivated customer read-only."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.models import Role, User
from bot.notify import Dispatcher, OutcomeUnknown, RetryLater
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.customers import CustomerData
from bot.storage.db import Database
from tests.conftest import T0, Chat, FakeNotifier, at, make_user
from tests.fakebotapi import FakeBotAPI
from tests.test_reminders import register_complaint
from tests.tg_harness import L, body, register, start_channel

REVEAL_LIMIT = 3
GLOBAL_FAILURES = 10


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Small limits, so that crossing them takes a few steps, not hundreds."""
    return load_settings(db_path=tmp_path / "taiqu.db", reveal_limit=REVEAL_LIMIT,
                         invite_global_failures_per_minute=GLOBAL_FAILURES)


LISI = CustomerData(account_no="5500012345", name="李四", area_id=1, address="城东村3组12号",
                    phone="13800001234", categories=("medical",), emergency_name="李小四",
                    emergency_phone="0551-12345678")


async def _customer(services: Services, user: User, data: CustomerData = LISI) -> int:
    return await services.customers.create(user, data, services.clock.now())


async def _audit(services: Services) -> list[tuple[str, dict]]:
    rows = await services.db.fetchall("SELECT action, detail FROM audit_log ORDER BY id")
    return [(r["action"], json.loads(r["detail"])) for r in rows]


async def _lead(services: Services, assistant: Assistant) -> Chat:
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "王班长")


# --- 13. the audit trail keeps numbers masked -------------------------------------------------
async def test_an_edit_audits_phone_numbers_masked(zhang: Chat, services: Services,
                                                   assistant: Assistant) -> None:
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    cid = await _customer(services, user)
    await zhang.tap(f"-|custedit|{cid}")
    await zhang.press("修改")
    await zhang.press("联系电话")
    await zhang.say("13900005678")
    await zhang.press("修改")
    await zhang.press("紧急联系人电话")
    await zhang.say("010-7654321")
    await zhang.press("保存")
    assert "已更新特殊客户档案" in zhang.text
    edits = [d for a, d in await _audit(services) if a == "edit"]
    assert edits == [{"phone": ["138****1234", "139****5678"],
                      "emergency_phone": ["0551-****5678", "010-****4321"]}]
    raw = " ".join(str(r[0]) for r in await services.db.fetchall("SELECT detail FROM audit_log"))
    assert "13800001234" not in raw and "13900005678" not in raw and "12345678" not in raw
    lead = await _lead(services, assistant)  # the history reads the masked values as they are
    await lead.tap(f"-|custlog|{cid}")
    assert "联系电话: 138****1234 → 139****5678" in lead.text


async def test_migration_masks_the_numbers_audited_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = await Database(path).connect(migrate_to=9)
    await db.execute("INSERT INTO teams(id, name, created_at) VALUES (1, '城东供电所', 'x')")
    details = [
        {"phone": ["13800001234", "13900005678"], "situation": ["旧", "新"]},
        {"emergency_phone": [None, "0551-12345678"]},
        {"emergency_phone": ["12345", ""], "phone": ["138****1234", "0551-87654321"]},
        {"field": "phone"},
        {"account_no": "5500012345"},
    ]
    for d in details:
        await db.execute(
            "INSERT INTO audit_log(team_id, actor, entity, entity_id, action, detail, at) "
            "VALUES (1, '张三', 'customer', 1, 'edit', ?, '2026-11-27T02:30:00+00:00')",
            (json.dumps(d, ensure_ascii=False),))
    await db.close()
    db = await Database(path).connect()
    rows = await db.fetchall("SELECT detail FROM audit_log ORDER BY id")
    await db.close()
    assert [json.loads(r[0]) for r in rows] == [
        {"phone": ["138****1234", "139****5678"], "situation": ["旧", "新"]},
        {"emergency_phone": [None, "0551-****5678"]},
        {"emergency_phone": ["***45", ""], "phone": ["138****1234", "0551-****4321"]},
        {"field": "phone"},
        {"account_no": "5500012345"},
    ]


# --- 13. revealing is limited per person; the lead is told once per window --------------------
async def test_reveals_beyond_the_limit_are_refused_and_the_lead_told_once(
        zhang: Chat, services: Services, assistant: Assistant, clock: FakeClock) -> None:
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    lead = await _lead(services, assistant)
    ids = [await _customer(services, user, CustomerData(**{
        **LISI.__dict__, "account_no": f"550001234{i}"})) for i in range(5)]
    for cid in ids[:REVEAL_LIMIT]:
        await zhang.tap(f"-|reveal|{cid}")
        assert "13800001234" in zhang.text
    refused = L("customer.reveal_limited", limit=REVEAL_LIMIT, minutes=60)
    for _ in range(30):  # a burst of presses, like 300 reveals in 9 s
        await zhang.tap(f"-|reveal|{ids[-1]}")
        assert zhang.last is not None and zhang.last.toast == L("customer.reveal_limited_toast")
        assert refused in zhang.text and "13800001234" not in zhang.text
    await zhang.tap(f"-|revealE|{ids[-1]}")  # the emergency number counts the same
    assert refused in zhang.text and "12345678" not in zhang.text
    actions = [a for a, _ in await _audit(services)]
    assert actions.count("reveal") == REVEAL_LIMIT and actions.count("reveal_limited") == 1
    # The lead is told once for the window, through the reminder queue.
    notifier = FakeNotifier()
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert notifier.texts("王班长") == [L("customer.reveal_limit_lead", name="张三",
                                           count=REVEAL_LIMIT, minutes=60)]
    assert notifier.texts("张三") == []
    # The limit is the database's: a restart does not reset it.
    again = Chat(Assistant(services), "test", "张三")
    await again.tap(f"-|reveal|{ids[0]}")
    assert refused in again.text
    # The lead's own reveals are counted for the lead, not refused by the manager's count.
    await lead.tap(f"-|reveal|{ids[0]}")
    assert "13800001234" in lead.text
    # An hour later the window has moved on.
    clock.advance(minutes=61)
    await zhang.tap(f"-|reveal|{ids[0]}")
    assert "13800001234" in zhang.text


# --- 14. invite codes: per chat and overall, in the database ----------------------------------
async def _invite(services: Services, name: str = "张三") -> str:
    from datetime import timedelta

    invite = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name=name,
        now=services.clock.now(), ttl=timedelta(days=7))
    return invite.code


async def test_wrong_codes_per_chat_are_remembered_across_a_restart(
        services: Services, assistant: Assistant, clock: FakeClock) -> None:
    code = await _invite(services)
    guesser = Chat(assistant, "test", "guesser")
    for i in range(5):
        await guesser.say(f"/start WRONG{i}")
        assert guesser.text == L("start.code_unknown")
        clock.advance(seconds=30)
    restarted = Chat(Assistant(services), "test", "guesser")
    await restarted.say(f"/start {code}")
    assert restarted.text == L("start.too_many", minutes=8)  # the first guess ages out first
    assert await services.people.by_identity("test", "guesser") is None
    clock.advance(minutes=8)
    await restarted.say(f"/start {code}")
    assert await services.people.by_identity("test", "guesser") is not None


async def test_too_many_wrong_codes_overall_pause_every_attempt(
        services: Services, assistant: Assistant, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    code = await _invite(services)
    caplog.set_level(logging.WARNING, logger="bot.handlers.start")
    # Many accounts, one or two guesses each: no single chat reaches its own limit.
    for i in range(GLOBAL_FAILURES):
        chat = Chat(assistant, "test", f"bot{i}")
        await chat.say(f"/start WRONG{i}")
        assert chat.text == L("start.code_unknown")
    paused = L("start.paused", minutes=10)
    for i in range(GLOBAL_FAILURES, GLOBAL_FAILURES + 5):
        chat = Chat(assistant, "test", f"bot{i}")
        await chat.say(f"/start WRONG{i}")
        assert chat.text == paused
    newcomer = Chat(Assistant(services), "test", "newcomer")  # after a restart, too
    await newcomer.say(f"/start {code}")
    assert newcomer.text == paused
    assert await services.people.by_identity("test", "newcomer") is None
    warnings = [r for r in caplog.records if "wrong invite codes" in r.getMessage()]
    assert len(warnings) == 1  # once per pause, not per refused attempt
    clock.advance(minutes=4)
    await newcomer.say(f"/start {code}")
    assert newcomer.text == L("start.paused", minutes=6)
    clock.advance(minutes=6)
    await newcomer.say(f"/start {code}")
    assert await services.people.by_identity("test", "newcomer") is not None


# --- 15. locations must be on the Earth -----------------------------------------------------
@pytest.mark.parametrize(("lat", "lon"), [
    (91.0, 117.2), (-90.5, 0.0), (31.8, 180.01), (31.8, -181.0), (math.nan, 117.2),
    (31.8, math.inf), (-math.inf, 0.0)])
async def test_locations_off_the_earth_are_refused(zhang: Chat, services: Services,
                                                   lat: float, lon: float) -> None:
    await zhang.say("记录巡视 3号台区 昨天下午3点")  # at a text step: a location is kept ...
    await zhang.location(lat, lon)
    assert zhang.text.startswith(L("form.location_invalid"))
    await zhang.say("更换表箱")
    await zhang.say("跳过")
    await zhang.say("跳过")
    await zhang.location(lat, lon)  # ... and at the location step itself
    assert zhang.text.startswith(L("form.location_invalid"))
    draft = await services.conversations.get(1)
    assert draft is not None and "location" not in draft.state.values
    await zhang.location(90.0, -180.0)  # the edges are on the Earth
    assert "位置：90.00000, -180.00000" in zhang.text


async def test_a_bad_location_is_refused_in_english_over_telegram(
        services: Services, settings: Settings, fake_api: FakeBotAPI) -> None:
    channel: TelegramChannel = await start_channel(services, settings, fake_api)
    try:
        user = await register(fake_api, services, 42, "Zhang")
        await user.say("/lang en")
        await user.say("记录巡视 3号台区 昨天下午3点")
        r = await user.location(math.nan, 117.2)  # JSON NaN: Python's json reads it
        assert body(r[0]).startswith(L("form.location_invalid", "en"))
    finally:
        await channel.stop()


# --- 15. a deactivated user's reminders go to the lead --------------------------------------
@pytest.fixture
async def deactivated_zhang(services: Services, assistant: Assistant) -> Chat:
    """张三 registered a complaint (first contact due Mon 10:30), then left the team."""
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    zhang = Chat(assistant, "test", "张三")
    await register_complaint(zhang)
    await services.db.execute("UPDATE users SET active = 0 WHERE name = '张三'")
    return zhang


@pytest.fixture
async def reminders(services: Services) -> AsyncIterator[tuple[ReminderService, FakeNotifier]]:
    notifier = FakeNotifier()
    yield ReminderService(services, Dispatcher(services, [notifier])), notifier


async def test_a_deactivated_users_reminder_is_forwarded_to_the_lead(
        deactivated_zhang: Chat, reminders: tuple[ReminderService, FakeNotifier],
        clock: FakeClock, services: Services) -> None:
    service, notifier = reminders
    at(clock, 2026, 11, 27, 15, 1)  # half-way to first contact
    result = await service.scan_once()
    assert (result.sent, result.dropped) == (1, 0)
    [forwarded] = notifier.texts("王班长")
    assert forwarded.startswith(L("reminder.deactivated", name="张三") + "\n\n")
    assert "首次联系客户" in forwarded
    assert notifier.texts("张三") == []
    row = await services.db.fetchone("SELECT state FROM reminders WHERE kind LIKE '%half%'")
    assert row is not None and row[0] == "sent"


async def test_a_deactivated_users_reminder_waits_for_the_morning(
        deactivated_zhang: Chat, reminders: tuple[ReminderService, FakeNotifier],
        clock: FakeClock) -> None:
    service, notifier = reminders
    at(clock, 2026, 11, 27, 22, 0)  # due since 15:00, but it is night and not urgent
    await service.scan_once()
    assert notifier.texts("王班长") == []
    at(clock, 2026, 11, 28, 7, 31)
    await service.scan_once()
    assert any(t.startswith(L("reminder.deactivated", name="张三"))
               for t in notifier.texts("王班长"))


async def test_a_reminder_held_for_the_digest_of_a_user_deactivated_since_is_forwarded(
        services: Services, assistant: Assistant, reminders: tuple[ReminderService, FakeNotifier],
        clock: FakeClock) -> None:
    """Held in quiet hours for 张三's morning digest; 张三 left before the morning: a
    deactivated user gets no digest, so the reminder goes to the lead, not nowhere."""
    service, notifier = reminders
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await register_complaint(Chat(assistant, "test", "张三"))
    at(clock, 2026, 11, 27, 22, 0)  # half-way reminder due since 15:00: held for the digest
    assert (await service.scan_once()).held == 1
    await services.db.execute("UPDATE users SET active = 0 WHERE name = '张三'")
    at(clock, 2026, 11, 28, 8, 31)
    await service.scan_once()
    assert any(t.startswith(L("reminder.deactivated", name="张三")) and "首次联系客户" in t
               for t in notifier.texts("王班长"))
    row = await services.db.fetchone("SELECT state FROM reminders WHERE kind = 'contact.half'")
    assert row is not None and row[0] == "sent"


async def test_a_forwarded_reminder_the_lead_did_not_get_is_tried_again(
        deactivated_zhang: Chat, reminders: tuple[ReminderService, FakeNotifier],
        clock: FakeClock, services: Services) -> None:
    """A flood limit or a network fault on the push to the lead is retried, as for any
    reminder: it was marked sent and never arrived."""
    service, notifier = reminders
    notifier.fail["王班长"] = [RetryLater(30, "429 Too Many Requests"),
                             RuntimeError("connection reset")]
    at(clock, 2026, 11, 27, 15, 1)
    result = await service.scan_once()
    assert (result.sent, result.retried) == (0, 1) and notifier.texts("王班长") == []
    at(clock, 2026, 11, 27, 15, 2)  # after the 30 s the flood limit asked for
    result = await service.scan_once()
    assert (result.sent, result.retried) == (0, 1) and notifier.texts("王班长") == []
    at(clock, 2026, 11, 27, 15, 3)  # the network fault's back-off (30 s) has passed
    assert (await service.scan_once()).sent == 1
    [forwarded] = notifier.texts("王班长")
    assert forwarded.startswith(L("reminder.deactivated", name="张三"))
    assert "首次联系客户" in forwarded


async def test_a_forwarded_reminder_whose_answer_was_lost_is_resent_marked(
        deactivated_zhang: Chat, reminders: tuple[ReminderService, FakeNotifier],
        clock: FakeClock, services: Services) -> None:
    service, notifier = reminders
    notifier.fail["王班长"] = [OutcomeUnknown("timed out")]
    at(clock, 2026, 11, 27, 15, 1)
    assert (await service.scan_once()).unknown == 1
    at(clock, 2026, 11, 27, 15, 4)  # TAIQU_UNKNOWN_OUTCOME_RETRY_SECONDS (120 s) later
    await service.scan_once()
    [forwarded] = notifier.texts("王班长")
    assert forwarded.startswith(L("reminder.maybe_repeat"))


# --- 15. a deactivated special customer is read-only ----------------------------------------
async def test_a_customer_deactivated_while_being_edited_is_not_changed(
        zhang: Chat, services: Services, assistant: Assistant) -> None:
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    cid = await _customer(services, user)
    await zhang.tap(f"-|custedit|{cid}")
    await zhang.press("修改")
    await zhang.press("联系电话")
    await zhang.say("13900005678")
    await services.customers.set_active(user, cid, False, T0, "已搬迁")  # meanwhile
    await zhang.press("保存")
    assert L("customer.readonly") in zhang.text
    c = await services.customers.get(user, cid)
    assert c is not None and c.phone == "13800001234"
    assert [a for a, _ in await _audit(services)] == ["create", "deactivate"]
    # Nor can the storage be asked directly, for an edit or a reveal.
    assert not await services.customers.update(user, cid, LISI, T0)
    assert await services.customers.reveal_phone(
        user, cid, "phone", T0, limit=REVEAL_LIMIT, window=services.form_timeout) is None
    # Registering the 户号 again offers the record, read-only, not its edit form.
    await zhang.say("/cancel")
    await zhang.say("确定放弃")
    await zhang.say("/customer")
    await zhang.say("5500012345")
    await zhang.press("打开已有档案")
    assert L("customer.readonly") in zhang.text and "修改特殊客户档案" not in zhang.text
    assert await services.conversations.get(user.id) is None
    assert [a for a, _ in await _audit(services)] == ["create", "deactivate"]
