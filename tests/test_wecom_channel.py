"""The WeCom channel's parts: the callback endpoint's refusals, rendering outcomes into as few
messages as WeCom's limits allow, and the per-member budget counted in the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.render import render
from bot.channels.wecom.store import Budget, OutItem, WeComStore
from bot.events import Attachment, Button, Incoming, Outcome, Reply
from bot.sendbudget import Lane, pushing
from bot.services import Services
from tests.conftest import make_user
from tests.fakewecom import FakeWeCom
from tests.tg_harness import L
from tests.wecom_harness import WcUser, shown, start_wecom


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f
        assert f.dropped == [] and f.truncated == []


@pytest.fixture
async def channel(services: Services, fake: FakeWeCom) -> AsyncIterator[WeComChannel]:
    ch = await start_wecom(services, fake)
    yield ch
    await ch.stop()


async def inbox_rows(services: Services) -> int:
    row = await services.db.fetchone("SELECT count(*) FROM wecom_inbox")
    return int(row[0]) if row else -1


async def post(url: str, query: dict[str, str], body: bytes) -> int:
    async with aiohttp.ClientSession() as s, s.post(f"{url}?{urlencode(query)}",
                                                    data=body) as resp:
        return resp.status


# --- the callback endpoint ---------------------------------------------------------------
async def test_a_callback_that_arrives_in_pieces_is_read_whole(
        channel: WeComChannel, fake: FakeWeCom, services: Services) -> None:
    """A body sent in several TCP pieces (chunked, a pause between them) is read to its end
    before it is judged: a real callback is answered 200, an oversized one 413. (One read of
    the stream returned only its first piece: 400, unreadable XML, for both.)"""
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    query, body = fake.encrypt_callback(fake.text_xml("zhangsan", "/help"))

    async def pieces(data: bytes, n: int) -> AsyncIterator[bytes]:
        for i in range(0, len(data), n):
            yield data[i:i + n]
            await asyncio.sleep(0.02)

    for data, n, expected in ((body, 64, 200),
                              (b"<xml>" + b" " * 70_000 + b"</xml>", 8_192, 413)):
        async with aiohttp.ClientSession() as s, s.post(
                f"{channel.url}?{urlencode(query)}", data=pieces(data, n),
                headers={"Content-Type": "text/xml"}) as resp:
            assert resp.status == expected, (len(data), n, resp.status)


async def test_url_verification_answers_the_plaintext_alone(channel: WeComChannel,
                                                            fake: FakeWeCom) -> None:
    status, text, echo = await fake.verify_url(channel.url)
    assert (status, text) == (200, echo)


async def test_forged_callbacks_get_403_and_nothing_is_processed(
        channel: WeComChannel, fake: FakeWeCom, services: Services) -> None:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    xml = fake.text_xml("zhangsan", "/help")
    # A tampered signature.
    status, _ = await fake.post_callback(channel.url, xml, query={"msg_signature": "0" * 40})
    assert status == 403
    # Sealed for another CorpID (right key, right signature).
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:8]
    other = fake.crypto.encrypt(xml, corp_id="wwsomeoneelse000")
    body = f"<xml><Encrypt><![CDATA[{other}]]></Encrypt></xml>".encode()
    query = {"msg_signature": fake.crypto.sign(ts, nonce, other), "timestamp": ts,
             "nonce": nonce}
    assert await post(channel.url, query, body) == 403
    # Broken ciphertext, correctly signed.
    broken = fake.crypto.encrypt(xml)[:-8] + "AAAAAAA="
    query["msg_signature"] = fake.crypto.sign(ts, nonce, broken)
    assert await post(channel.url, query,
                      f"<xml><Encrypt><![CDATA[{broken}]]></Encrypt></xml>".encode()) == 403
    # A signed callback replayed after a day and more.
    old = str(int(time.time()) - 2 * 86400)
    status, _ = await fake.post_callback(channel.url, xml, timestamp=old)
    assert status == 403
    # An entity bomb in the unauthenticated envelope; an oversized body.
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b"<xml><Encrypt>&a;</Encrypt></xml>")
    assert await post(channel.url, query, bomb) == 400
    assert await post(channel.url, query, b"<xml>" + b" " * 70_000 + b"</xml>") == 413
    await channel.idle()
    assert await inbox_rows(services) == 0
    assert fake.sent("zhangsan") == [] and fake.calls_to("/cgi-bin/message/send") == []


async def test_acknowledged_before_handled(channel: WeComChannel, fake: FakeWeCom,
                                          services: Services) -> None:
    """The 200 does not wait for the core or the send API (WeCom gives up after 5 s)."""
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    fake.slow("/cgi-bin/message/send", 3.0)
    started = time.monotonic()
    status, body = await fake.post_callback(channel.url, fake.text_xml("zhangsan", "/help"))
    assert (status, body) == (200, "")
    assert time.monotonic() - started < 1.0
    fake.slow("/cgi-bin/message/send", 0)
    await channel.idle()
    # All of /help arrived: its text in parts within WeCom's 2048 bytes, then the buttons.
    texts = fake.texts("zhangsan")
    assert texts[0].startswith("📖") and all(len(t.encode()) <= 2048 for t in texts)
    assert len(fake.sent("zhangsan")) == len(texts) + 1


async def test_callback_for_another_agent_is_ignored(channel: WeComChannel, fake: FakeWeCom,
                                                     services: Services) -> None:
    xml = fake.text_xml("zhangsan", "/help").replace(
        f"<AgentID>{fake.agent_id}</AgentID>", "<AgentID>999</AgentID>")
    status, _ = await fake.post_callback(channel.url, xml)
    assert status == 200
    assert await inbox_rows(services) == 0


async def test_a_member_bursting_messages_is_answered_in_order(
        channel: WeComChannel, fake: FakeWeCom, services: Services) -> None:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    for i in range(5):
        await fake.post_callback(channel.url, fake.text_xml("zhangsan", f"查客户 人{i}"))
    await channel.idle()
    got = [shown(m) for m in fake.sent("zhangsan")]
    assert got == [L("customers.none", text=f"人{i}") for i in range(5)]


async def test_a_reply_tapped_twice_acts_once(channel: WeComChannel, fake: FakeWeCom,
                                             services: Services) -> None:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    zhang = WcUser(fake, channel, "zhangsan")
    await zhang.say("记录巡视 3号台区")
    card, key = zhang.card_with("现在")
    xml = fake.card_tap_xml("zhangsan", card, key, create_time=int(time.time()))
    first = await zhang._post(xml)
    again = await zhang._post(xml)  # WeCom redelivers the same tap event
    assert len(first) == 1 and again == []
    assert len(fake.card_updates) == 1


async def test_a_reply_goes_ahead_of_the_same_members_push_waiting_for_the_budget(
        services: Services, fake: FakeWeCom) -> None:
    """A member's digest waits for the app's send budget; the member writes meanwhile: the
    answer takes the next send, not the one after the digest (issue #12). The digest's
    wait must not hold the member's messages behind it."""
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    # A send every 4 s: room for the answer to reach the budget while the digest waits.
    ch = await start_wecom(services, fake, sends_per_second=0.25)
    budget = ch.sender.app_budget
    assert budget is not None
    try:
        with pushing():
            await ch.notifier.push("lisi", Reply("李四的推送"))  # takes the one free send
            digest = asyncio.create_task(ch.notifier.push("zhangsan", Reply("张三的汇总")))
        for _ in range(1000):
            if budget.waiting(Lane.PUSH):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the digest never waited for the budget")
        status, _ = await fake.post_callback(ch.url, fake.text_xml("zhangsan", "查客户 王五"))
        assert status == 200
        await digest
        await ch.idle()
        assert [shown(m) for m in fake.sent("zhangsan")] == [
            L("customers.none", text="王五"), "张三的汇总"]
    finally:
        await ch.stop()


# --- rendering ------------------------------------------------------------------------
def test_texts_of_one_outcome_are_merged_while_they_fit() -> None:
    out = Outcome().add("第一段").add("第二段").add("问题？", [[Button("是", "t|y|"),
                                                             Button("否", "t|n|")]])
    items = render(out, "请选择")
    assert [i.kind for i in items] == ["text", "card"]
    assert items[0].payload["content"] == "第一段\n\n第二段"
    assert items[1].payload == {"title": "问题？", "sub": "",
                                "buttons": [["t|y|", "是"], ["t|n|", "否"]]}


def test_long_texts_stay_within_2048_bytes_and_a_long_question_is_sent_before_its_card(
        ) -> None:
    long_line = "台区" * 400  # 2400 bytes
    out = Outcome().add("甲" * 600).add("乙" * 600)  # 1800 bytes each: no merge
    out.add(long_line[:600], [[Button("好", "t|ok|")]])
    items = render(out, "请选择")
    assert [i.kind for i in items] == ["text", "text", "text", "card"]
    assert all(len(i.payload.get("content", "").encode()) <= 2048 for i in items)
    assert items[3].payload["title"] == "请选择"


def test_files_and_toasts_become_messages() -> None:
    reply = Reply("报表", attachments=[Attachment("a.xlsx", b"PK..data"),
                                       Attachment("c.png", b"\x89PNG", "photo")],
                  photos=["wecom:7", "telegram:AgAD"])
    items = render(Outcome(toast="已保存", replies=[reply]), "请选择")
    assert [(i.kind, i.payload) for i in items] == [
        ("text", {"content": "已保存\n\n报表"}), ("image", {"media": 7}),
        ("file", {"filename": "a.xlsx"}), ("image", {"filename": "c.png"})]


# --- the budget, in the database -----------------------------------------------------------
async def test_budget_counts_the_last_minute_and_hour(services: Services) -> None:
    store = WeComStore(services.db, Budget(per_minute=3, per_hour=5, margin=0))
    ids = await store.handled(None, "u", [OutItem("text", {"content": str(i)})
                                          for i in range(5)], services.clock.now())
    for row_id, at in zip(ids, (0.0, 10.0, 20.0), strict=False):
        assert await store.claim(row_id, "u", at) == 0  # each send is counted as it is claimed
    assert await store.wait_for_room("u", 30.0) == pytest.approx(30.0)
    assert await store.wait_for_room("u", 60.5) == 0.0
    assert await store.claim(ids[3], "u", 61.0) == 0
    assert await store.claim(ids[4], "u", 200.0) == 0
    assert await store.wait_for_room("u", 300.0) == pytest.approx(3300.0)  # the hour is full
    assert await store.wait_for_room("someone else", 300.0) == 0.0


async def test_a_picture_wecom_cannot_hand_over_is_asked_for_again(
        channel: WeComChannel, fake: FakeWeCom, services: Services) -> None:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    zhang = WcUser(fake, channel, "zhangsan")
    fake.fail_next("/cgi-bin/media/get", "-1", count=10)  # busy on every retry
    r = await zhang._post(fake.image_xml("zhangsan", fake.add_media(b"\x89PNG one")))
    assert [shown(m) for m in r] == [L("wecom.image_failed")]
    assert (await services.db.fetchone("SELECT count(*) FROM wecom_media"))[0] == 0
    fake.clear_faults()
    fake.fail_next("/cgi-bin/media/get", "502")
    r = await zhang.image(b"\x89PNG two")  # one fault is retried at once: kept
    assert L("media.loose_photo", count=1, minutes=10) in shown(r[0])
    assert (await services.db.fetchone("SELECT count(*) FROM wecom_media"))[0] == 1


async def test_a_graceful_stop_finishes_the_answers_in_flight(services: Services,
                                                              fake: FakeWeCom) -> None:
    """SIGTERM (channel.stop) while an answer is on its way to WeCom: it is finished and
    recorded as sent, not cut off and left 'sending' for the next start to send again."""
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    ch = await start_wecom(services, fake)
    fake.slow("/cgi-bin/message/send", 0.5)
    status, _ = await fake.post_callback(ch.url, fake.text_xml("zhangsan", "/help"))
    assert status == 200
    for _ in range(200):  # until the answer is in flight
        row = await services.db.fetchone(
            "SELECT count(*) FROM wecom_outbox WHERE state = 'sending'")
        if row and row[0]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the answer never went out")
    await ch.stop()
    states = [r[0] for r in await services.db.fetchall("SELECT state FROM wecom_outbox")]
    assert states and set(states) == {"sent"}, states
    assert [r[0] for r in await services.db.fetchall("SELECT state FROM wecom_inbox")] \
        == ["done"]
    fake.slow("/cgi-bin/message/send", 0)
    again = await start_wecom(services, fake)  # the next start has nothing to send again
    await again.idle()
    await again.stop()
    assert len(fake.sent("zhangsan")) == len(states)


async def test_a_callback_that_keeps_failing_is_set_aside_without_its_text(
        channel: WeComChannel, fake: FakeWeCom, services: Services) -> None:
    """Tried three times (the shared inbox drain), then set aside: what the person wrote is
    not kept, and their next message is answered."""
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    handle = channel.assistant.handle

    async def broken(event: Incoming) -> Outcome:
        if event.text == "3号台区 王大妈 电话 13800000000":
            raise RuntimeError("a bug in the core")
        return await handle(event)

    channel.assistant.handle = broken  # type: ignore[method-assign]
    zhang = WcUser(fake, channel, "zhangsan")
    assert await zhang.say("3号台区 王大妈 电话 13800000000") == []
    assert [shown(m) for m in await zhang.say("我的待办")] == [L("todo.none")]
    rows = await services.db.fetchall(
        "SELECT state, attempts, xml, claimed_by FROM wecom_inbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("failed", 3, "", None), ("done", 0, "", None)]
