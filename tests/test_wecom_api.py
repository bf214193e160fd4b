"""The WeCom API client against the loopback fake WeCom (tests/fakewecom.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.channels.wecom.api import (
    MAX_TEXT_BYTES,
    CardButton,
    WeComAPIError,
    WeComClient,
    WeComIPNotTrusted,
    WeComResponseCodeSpent,
    WeComRetryLater,
    WeComUnreachable,
    split_text,
)
from tests.fakewecom import FakeWeCom, Sent

SEND = "/cgi-bin/message/send"
TOKEN = "/cgi-bin/gettoken"


class Ticker:
    """An injectable monotonic clock for the client's token cache."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as server:
        yield server


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def client(fake: FakeWeCom, ticker: Ticker) -> AsyncIterator[WeComClient]:
    async with WeComClient(fake.corp_id, fake.secret, fake.agent_id, base_url=fake.base_url,
                           timeout=2.0, monotonic=ticker) as c:
        yield c


def buttons(n: int) -> list[CardButton]:
    return [CardButton(f"k{i}", f"选项{i}") for i in range(n)]


# --- access_token ---------------------------------------------------------------------------
async def test_token_is_fetched_once_and_shared_by_concurrent_sends(
        fake: FakeWeCom, client: WeComClient) -> None:
    await asyncio.gather(*(client.send_text(f"u{i}", "早上好") for i in range(20)))
    await client.send_text("u0", "再来一条")
    assert len(fake.calls_to(TOKEN)) == 1
    assert len(fake.calls_to(SEND)) == 21
    assert all(c.errcode == 0 for c in fake.calls)


async def test_token_is_refetched_shortly_before_it_expires(
        fake: FakeWeCom, client: WeComClient, ticker: Ticker) -> None:
    await client.send_text("u1", "a")
    ticker.t += 7200 - 301  # still inside expires_in minus the 300 s margin
    await client.send_text("u1", "b")
    assert len(fake.calls_to(TOKEN)) == 1
    ticker.t += 2
    await client.send_text("u1", "c")
    assert len(fake.calls_to(TOKEN)) == 2
    assert [c.errcode for c in fake.calls_to(SEND)] == [0, 0, 0]  # never sent a dead token


@pytest.mark.parametrize("how", ["expired", "40014", "42001"])
async def test_stale_token_is_refetched_and_the_call_retried_once(
        fake: FakeWeCom, client: WeComClient, how: str) -> None:
    await client.send_text("u1", "a")
    if how == "expired":
        fake.expire_tokens()  # WeCom expired it early; the client still thinks it is good
    else:
        fake.fail_next(SEND, how)
    await client.send_text("u1", "b")
    assert fake.texts("u1") == ["a", "b"]
    assert len(fake.calls_to(TOKEN)) == 2
    assert [c.errcode for c in fake.calls_to(SEND)] == [0, 42001 if how == "expired" else
                                                        int(how), 0]


async def test_token_refetch_happens_once_for_many_concurrent_stale_sends(
        fake: FakeWeCom, client: WeComClient) -> None:
    await client.send_text("u0", "a")
    fake.expire_tokens()
    await asyncio.gather(*(client.send_text(f"u{i}", "b") for i in range(10)))
    assert len(fake.calls_to(TOKEN)) == 2


async def test_a_second_stale_token_is_not_retried_forever(
        fake: FakeWeCom, client: WeComClient) -> None:
    fake.fail_next(SEND, "42001", count=5)
    with pytest.raises(WeComAPIError) as err:
        await client.send_text("u1", "a")
    assert err.value.errcode == 42001
    assert len(fake.calls_to(SEND)) == 2


async def test_wrong_secret_is_a_plain_error(fake: FakeWeCom) -> None:
    async with WeComClient(fake.corp_id, "wrong", fake.agent_id, base_url=fake.base_url) as c:
        with pytest.raises(WeComAPIError) as err:
            await c.send_text("u1", "a")
    assert (err.value.errcode, err.value.retry_later) == (40001, False)


# --- text -------------------------------------------------------------------------------
def test_split_text_keeps_characters_whole_and_under_the_byte_limit() -> None:
    text = "台区巡视记录：3号台区变压器油位正常。📝" * 300  # 3- and 4-byte characters
    chunks = split_text(text, MAX_TEXT_BYTES)
    assert len(chunks) > 1
    assert all(0 < len(c.encode()) <= MAX_TEXT_BYTES for c in chunks)
    assert "".join(chunks) == text
    assert all(len(c.encode()) > MAX_TEXT_BYTES - 4 for c in chunks[:-1])  # filled up
    for limit in (4, 5, 6, 7, 100):
        parts = split_text("a台📝b" * 50, limit)
        assert "".join(parts) == "a台📝b" * 50
        assert all(0 < len(p.encode()) <= limit for p in parts)


def test_split_text_prefers_line_breaks_and_leaves_short_text_alone() -> None:
    lines = [f"第{i}行：" + "客户经理" * 20 for i in range(40)]
    chunks = split_text("\n".join(lines), MAX_TEXT_BYTES)
    assert all(len(c.encode()) <= MAX_TEXT_BYTES for c in chunks)
    assert "\n".join(chunks).split("\n") == lines  # cut only between lines
    assert split_text("短消息") == ["短消息"]
    assert split_text("") == [""]
    with pytest.raises(ValueError):
        split_text("x", 3)


async def test_over_long_text_is_refused_not_cut_and_split_text_fits(
        fake: FakeWeCom, client: WeComClient) -> None:
    long = "超长回复" * 200  # 2400 bytes
    with pytest.raises(ValueError, match="split_text"):
        await client.send_text("u1", long)
    assert fake.calls_to(SEND) == []
    for chunk in split_text(long):
        await client.send_text("u1", chunk)
    assert "".join(fake.texts("u1")) == long
    assert fake.truncated == []


async def test_fake_cuts_over_long_text_like_wecom_and_says_so(
        fake: FakeWeCom, client: WeComClient) -> None:
    token = await client.access_token()
    long = "超长回复" * 200
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        r = await http.post(SEND, params={"access_token": token}, json={
            "touser": "u1", "msgtype": "text", "agentid": fake.agent_id,
            "text": {"content": long}})
    assert r.json()["errcode"] == 0  # WeCom does not complain ...
    stored, size = fake.truncated[0]
    assert size == 2400  # ... but the fake records the cut
    assert len(stored.text.encode()) <= 2048
    assert long.startswith(stored.text)


# --- cards ----------------------------------------------------------------------------------
async def test_card_with_seven_buttons_is_refused_before_sending(
        fake: FakeWeCom, client: WeComClient) -> None:
    with pytest.raises(ValueError, match="1 to 6 buttons"):
        await client.send_button_card("u1", title="选择台区", buttons=buttons(7))
    with pytest.raises(ValueError, match="unique"):
        await client.send_button_card("u1", title="选择台区",
                                      buttons=[CardButton("a", "1"), CardButton("a", "2")])
    assert fake.calls_to(SEND) == []


async def test_fake_refuses_seven_buttons_too(fake: FakeWeCom, client: WeComClient) -> None:
    token = await client.access_token()
    card = {"card_type": "button_interaction", "main_title": {"title": "x"}, "task_id": "t7",
            "button_list": [{"text": str(i), "key": f"k{i}"} for i in range(7)]}
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        r = await http.post(SEND, params={"access_token": token}, json={
            "touser": "u1", "msgtype": "template_card", "agentid": fake.agent_id,
            "template_card": card})
    assert r.json()["errcode"] == 40058
    assert fake.sent("u1") == []


async def test_card_tap_response_code_updates_once(fake: FakeWeCom, client: WeComClient) -> None:
    sent = await client.send_button_card("u1", title="保存这条日志？", desc="3号台区 巡视",
                                         buttons=buttons(6))
    card = fake.sent("u1")[0]
    assert card.msgtype == "template_card"
    assert card.payload["task_id"] == sent.task_id
    assert card.button_keys == [f"k{i}" for i in range(6)]
    # The tap event's code (as the callback carries it) works once.
    tap_code = fake.issue_response_code(card)
    await client.update_template_card(["u1"], tap_code, replace_name="已保存")
    assert card.replaced_with == "已保存"
    with pytest.raises(WeComResponseCodeSpent):
        await client.update_template_card(["u1"], tap_code, replace_name="已保存")
    # The send's own code is single-use as well.
    assert sent.response_code
    await client.update_template_card(["u1"], sent.response_code, replace_name="x")
    with pytest.raises(WeComResponseCodeSpent) as err:
        await client.update_template_card(["u1"], sent.response_code, replace_name="x")
    assert err.value.errcode == 60140


async def test_task_ids_are_unique(fake: FakeWeCom, client: WeComClient) -> None:
    a = await client.send_button_card("u1", title="t", buttons=buttons(2))
    b = await client.send_button_card("u1", title="t", buttons=buttons(2))
    assert a.task_id != b.task_id
    with pytest.raises(WeComAPIError) as err:  # the fake, like WeCom, refuses a reused one
        await client.send_button_card("u1", title="t", buttons=buttons(2), task_id=a.task_id)
    assert err.value.errcode == 40058
    with pytest.raises(ValueError):
        await client.send_button_card("u1", title="t", buttons=buttons(2), task_id="有空格 x")


# --- limits and errors ------------------------------------------------------------------------
async def test_fake_silently_drops_the_31st_message_in_a_minute(
        fake: FakeWeCom, client: WeComClient) -> None:
    for i in range(31):
        await client.send_text("u1", f"第{i + 1}条")  # no error for any of them
    assert len(fake.sent("u1")) == 30
    assert [m.text for m in fake.dropped] == ["第31条"]
    await client.send_text("u2", "别人不受影响")
    assert fake.texts("u2") == ["别人不受影响"]
    fake.advance(60)
    await client.send_text("u1", "一分钟后")
    assert fake.texts("u1")[-1] == "一分钟后"


def test_fake_drops_over_1000_an_hour() -> None:
    fake = FakeWeCom()
    t0 = fake.now()
    for i in range(1001):  # 30 every 61 s keeps under the minute limit
        at = t0 + (i // 30) * 61 + (i % 30) * 0.1
        fake._deliver(Sent(str(i), "u1", "text", {"content": "x"}, at))
    assert len(fake.sent("u1")) == 1000
    assert [m.msgid for m in fake.dropped] == ["1000"]


@pytest.mark.parametrize("kind", ["45009", "45033", "-1"])
async def test_busy_and_over_limit_errcodes_are_retry_later(
        fake: FakeWeCom, client: WeComClient, kind: str) -> None:
    fake.fail_next(SEND, kind)
    with pytest.raises(WeComRetryLater) as err:
        await client.send_text("u1", "a")
    assert (err.value.errcode, err.value.retry_later) == (int(kind), True)
    await client.send_text("u1", "a")  # the fault was one call
    assert fake.texts("u1") == ["a"]


async def test_http_502_and_slow_answers_are_retry_later(
        fake: FakeWeCom, client: WeComClient) -> None:
    await client.access_token()
    fake.fail_next(SEND, "502")
    with pytest.raises(WeComRetryLater) as err:
        await client.send_text("u1", "a")
    assert err.value.http_status == 502
    fake.fail_next(TOKEN, "502")
    fake.expire_tokens()
    with pytest.raises(WeComRetryLater):  # gettoken's 502 too
        await client.send_text("u1", "a")
    async with WeComClient(fake.corp_id, fake.secret, fake.agent_id, base_url=fake.base_url,
                           timeout=0.1) as impatient:
        fake.slow(SEND, 0.5)
        with pytest.raises(WeComRetryLater, match="Timeout"):
            await impatient.send_text("u1", "a")


@pytest.mark.parametrize("path", [SEND, TOKEN])
async def test_an_answer_that_is_not_wecom_json_is_retry_later(
        fake: FakeWeCom, client: WeComClient, path: str) -> None:
    fake.fail_next(path, "html")
    with pytest.raises(WeComRetryLater, match="not JSON"):
        await client.send_text("u1", "a")
    await client.send_text("u1", "a")
    assert fake.texts("u1") == ["a"]


async def test_81013_is_unreachable(fake: FakeWeCom, client: WeComClient) -> None:
    fake.unreachable.add("left_the_company")
    with pytest.raises(WeComUnreachable) as err:
        await client.send_text("left_the_company", "提醒")
    assert (err.value.errcode, err.value.retry_later) == (81013, False)


async def test_60020_says_plainly_which_ip_to_trust_once_and_leaks_nothing(
        fake: FakeWeCom, client: WeComClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = await client.access_token()
    fake.fail_next(None, "60020", count=2)
    for _ in range(2):
        with pytest.raises(WeComIPNotTrusted):
            await client.send_text("u1", "客户张某 13800000000 欠费")
    lines = [r.getMessage() for r in caplog.records if "60020" in r.getMessage()]
    assert len(lines) == 1
    assert "127.0.0.1" in lines[0]
    assert "企业可信IP" in lines[0]
    assert str(fake.agent_id) in lines[0]
    for secret in (token, fake.secret, "13800000000", "客户张某"):
        assert secret not in caplog.text


# --- media and menu -------------------------------------------------------------------------
async def test_media_upload_send_and_download(fake: FakeWeCom, client: WeComClient) -> None:
    xlsx = b"PK\x03\x04" + b"\x00" * 200
    media_id = await client.upload_media(
        "file", "周报.xlsx", xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    await client.send_file("u1", media_id)
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100
    await client.send_image("u1", await client.upload_media("image", "chart.png", png,
                                                            "image/png"))
    got = [(m.msgtype, fake.media[m.payload["media_id"]][:3]) for m in fake.sent("u1")]
    assert got[0] == ("file", (xlsx, "application/vnd.openxmlformats-officedocument."
                               "spreadsheetml.sheet", "周报.xlsx"))
    assert got[1] == ("image", (png, "image/png", "chart.png"))

    photo = fake.add_media(b"\xff\xd8\xff\xe0" + b"\x02" * 300, "image/jpeg")
    media = await client.get_media(photo)
    assert media.content == b"\xff\xd8\xff\xe0" + b"\x02" * 300
    assert media.content_type == "image/jpeg"
    with pytest.raises(WeComAPIError) as err:
        await client.get_media("expired-after-3-days")
    assert err.value.errcode == 40007


async def test_media_get_refetches_a_stale_token(fake: FakeWeCom, client: WeComClient) -> None:
    await client.access_token()
    fake.expire_tokens()
    photo = fake.add_media(b"\xff\xd8\xff\xe0abcd")
    assert (await client.get_media(photo)).content == b"\xff\xd8\xff\xe0abcd"


async def test_media_size_limits_are_checked_before_uploading(
        fake: FakeWeCom, client: WeComClient) -> None:
    with pytest.raises(ValueError, match="10 MB"):
        await client.upload_media("image", "big.png", b"\x00" * (10 * 1024 * 1024 + 1))
    with pytest.raises(ValueError):
        await client.upload_media("file", "empty.xlsx", b"")
    assert fake.calls_to("/cgi-bin/media/upload") == []


async def test_menu_create(fake: FakeWeCom, client: WeComClient) -> None:
    subs = [{"type": "click", "name": "待办", "key": "menu_todo"},
            {"type": "click", "name": "查客户", "key": "menu_cust"}]
    menu = [{"type": "click", "name": "记日志", "key": "menu_log"},
            {"name": "查询", "sub_button": subs},
            {"type": "click", "name": "周报", "key": "menu_report"}]
    await client.create_menu(menu)
    assert fake.menus[fake.agent_id] == menu
    with pytest.raises(ValueError):
        await client.create_menu([*menu, {"type": "click", "name": "多", "key": "x"}])


async def test_fake_robot_webhook_takes_20_a_minute(fake: FakeWeCom) -> None:
    async with httpx.AsyncClient() as http:
        codes = [(await http.post(fake.robot_url("team-east"), json={
            "msgtype": "text", "text": {"content": f"周报 {i}"}})).json()["errcode"]
            for i in range(21)]
        assert codes == [0] * 20 + [45009]
        other = await http.post(fake.robot_url("team-west"), json={"msgtype": "text"})
        assert other.json()["errcode"] == 0
        fake.advance(60)
        again = await http.post(fake.robot_url("team-east"), json={"msgtype": "text"})
        assert again.json()["errcode"] == 0
    assert len(fake.robots["team-east"].sent) == 21
