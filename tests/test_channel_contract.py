"""The channel contract end to end: a channel with WeCom's caps registered on the Assistant
(2048 bytes, 6 buttons, no edits, no toasts), numbered choices answered by number or label and
kept across a restart, and one person on two channels with one account and one form."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import timedelta
from typing import Any

import pytest

from bot.assistant import Assistant
from bot.channel import ChannelCaps
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Incoming, Outcome
from bot.services import Services
from bot.storage.worklogs import NewWorkLog
from tests.conftest import Chat, make_user
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, TgUser, body, labels, open_drafts, register
from tests.tg_harness import worklog_rows as saved_logs

# WeCom's caps, as the WeCom channel declares them (issue #9).
NARROW = ChannelCaps(max_text=2048, text_unit="byte", max_buttons=6, max_button_data=1024,
                     can_edit=False, toasts=False, menus_per_language=False)
EIGHT = tuple(f"{i}号台区" for i in range(1, 9))
HINT = L("button.choose_hint")


def numbered(out: Outcome) -> list[str]:
    """The numbered lines of what the user sees ("7. 7号台区")."""
    return [line for r in out.replies for line in r.text.split("\n")
            if line.split(". ", 1)[0].isdigit()]


def buttons(out: Outcome) -> list[str]:
    return [b.label for r in out.replies for row in r.buttons for b in row]


@pytest.fixture
async def narrow(services: Services, assistant: Assistant) -> Chat:
    """A manager with 8 台区 on the narrow channel."""
    assistant.register_channel("narrow", NARROW)
    await make_user(services, "张三", areas=EIGHT, channel="narrow", external_id="zhangsan")
    return Chat(assistant, "narrow", "zhangsan")


async def _to_area_step(chat: Chat) -> Outcome:
    out = await chat.say("/log")
    assert buttons(out) == []  # 9 work items + 完成 + 取消: more than a card holds
    assert "4. ☐ 巡视" in numbered(out) and out.replies[-1].text.endswith(HINT)
    out = await chat.say("巡视")  # a label, typed
    # No toast and no edit on this channel: the toast is a short reply, the edit a new one.
    assert out.toast is None and out.edit is None
    assert out.replies[0].text == L("form.toggled")
    assert "4. ☑ 巡视" in numbered(out)
    return await chat.say("完成")


async def _finish(chat: Chat) -> None:
    await chat.say("现在")
    await chat.say("更换表箱锁具")
    for _ in range(3):  # problems, photos, location
        await chat.say("跳过")
    await chat.say("保存")


async def test_a_list_longer_than_a_card_is_answered_by_number_and_label(
        services: Services, narrow: Chat) -> None:
    out = await _to_area_step(narrow)
    assert buttons(out) == []
    assert numbered(out)[:8] == [f"{i}. {i}号台区" for i in range(1, 9)]
    assert numbered(out)[8:] == ["9. ⬅️ 上一步", "10. ✖️ 取消"]
    out = await narrow.say("7")
    assert L("form.worklog.time") in narrow.text  # the next question: 7号台区 was taken
    assert buttons(out)  # this step's 3 buttons fit: real buttons again
    await _finish(narrow)
    # The second entry picks its area by label, with full-width digits.
    await _to_area_step(narrow)
    await narrow.say("８号台区")
    await _finish(narrow)
    rows = await saved_logs(services)
    assert [(r["area_name"], r["items"]) for r in rows] == [
        ("7号台区", ["patrol"]), ("8号台区", ["patrol"])]
    assert all(len(r.text.encode()) <= 2048 for r in (narrow.last or Outcome()).replies)


async def test_a_typed_label_presses_a_button_the_words_alone_would_not(
        services: Services, narrow: Chat, clock: FakeClock) -> None:
    """`#6 3号台区 巡视` typed freely would start a new log (a work-log sentence); with the
    list of logs numbered on screen it opens entry #6."""
    user = await services.people.by_identity("narrow", "zhangsan")
    assert user is not None
    areas = {a.name: a.id for a in await services.people.areas_for(user)}
    for i in range(7):  # a page of 7 logs plus 📝: more than 6 buttons
        await services.worklogs.add(user, NewWorkLog(
            area_id=areas["3号台区"], items=("patrol",), has_time=True, content=f"第{i}条",
            occurred_at=clock.now() - timedelta(hours=i + 1)), clock.now())
    out = await narrow.say("/logs")
    assert buttons(out) == [] and len(numbered(out)) >= 7
    label = next(line.split(". ", 1)[1] for line in numbered(out) if line.startswith("6. "))
    m = re.fullmatch(r"#(\d+) 3号台区 巡视", label)
    assert m is not None, label
    await narrow.say(label)
    assert L("logs.card_title", id=int(m.group(1))) in narrow.text
    assert await open_drafts(services) == 0  # no new form was started
    await narrow.say("3")  # the card's 2 buttons fit: the list's numbers are gone
    assert narrow.text == L("menu.not_understood", text="3")


async def test_a_stale_number_after_a_new_reply_is_not_applied(narrow: Chat) -> None:
    out = await narrow.say("/log")
    assert "7. ☐ 线损" in numbered(out)
    await narrow.say("/cancel")
    await narrow.say("确定放弃")  # a new reply with no numbered choices
    out = await narrow.say("7")
    # "7" is just text now: not 线损 of a cancelled form (which would answer "button stale").
    assert narrow.text == L("menu.not_understood", text="7")
    assert L("button.stale_long") not in narrow.text


async def test_numbered_choices_survive_a_restart(settings: Settings, clock: FakeClock) -> None:
    services = await Services.open(settings, clock)
    first = Assistant(services)
    first.register_channel("narrow", NARROW)
    await make_user(services, "张三", areas=EIGHT, channel="narrow", external_id="zhangsan")
    chat = Chat(first, "narrow", "zhangsan")
    await _to_area_step(chat)
    await services.close()  # the process stops between the list and the answer

    services = await Services.open(settings, clock)
    try:
        again = Assistant(services)
        again.register_channel("narrow", NARROW)
        chat = Chat(again, "narrow", "zhangsan")
        await chat.say("7")
        assert L("form.worklog.time") in chat.text
        user = await services.people.by_identity("narrow", "zhangsan")
        assert user is not None
        draft = await services.conversations.get(user.id)
        areas = {a.name: a.id for a in await services.people.team_areas(user.team_id)}
        assert draft is not None and draft.state.values["area"] == str(areas["7号台区"])
    finally:
        await services.close()


async def test_unregistered_channels_get_outcomes_as_built(services: Services) -> None:
    await make_user(services, "李四", areas=EIGHT)
    bare = Assistant(services)
    bare.register_channel("narrow", NARROW)  # another channel's caps do not apply
    out = await Chat(bare, "test", "李四").say("/log")
    assert len(buttons(out)) == 11 and numbered(out) == []


# --- one person, two channels -------------------------------------------------------------
@pytest.fixture
async def both(channel: TelegramChannel, services: Services,
               fake_api: FakeBotAPI) -> tuple[TgUser, Chat]:
    """张三 on Telegram, then bound on the narrow channel too (as WeCom will bind him)."""
    tg = await register(fake_api, services, 42, "张三", areas=EIGHT)
    user = await services.people.by_identity("telegram", "42")
    assert user is not None
    async with services.db.tx() as tx:
        await services.people.link_identity(tx, "narrow", "zs", user.id, services.clock.now())
    channel.assistant.register_channel("narrow", NARROW)
    return tg, Chat(channel.assistant, "narrow", "zs")


async def test_one_form_continued_from_the_other_channel(
        services: Services, both: tuple[TgUser, Chat]) -> None:
    tg, other = both
    msgs = await tg.say("/log")
    assert "☐ 巡视" in labels(msgs[-1])  # Telegram: 11 real buttons, as before
    out = await other.say("巡视")  # the same form, from the other channel: 巡视 answered
    assert numbered(out)[6] == "7. 7号台区"  # the area question, as this channel shows it
    await other.say("7")
    assert L("form.worklog.time") in other.text
    msgs = await tg.say("现在")  # and back on Telegram, at the step the other channel reached
    assert L("form.worklog.content") in body(msgs[-1])
    await other.say("两个渠道记的一条日志")
    for _ in range(3):
        await tg.say("跳过")
    await tg.press("保存")
    rows = await saved_logs(services)
    assert [(r["area_name"], r["content"]) for r in rows] == [("7号台区", "两个渠道记的一条日志")]
    assert await open_drafts(services) == 0


async def test_one_persons_updates_are_handled_in_order_across_channels(
        services: Services, both: tuple[TgUser, Chat]) -> None:
    """Two identities of one person, updates arriving together: handled one after the other,
    in arrival order, never interleaved (so the second sees the first's form state)."""
    _, other = both
    assistant = other.assistant
    spans: list[tuple[str, str]] = []
    real = assistant._handle

    async def slow(ev: Incoming, *step: Any) -> Outcome:
        spans.append(("start", ev.channel))
        await asyncio.sleep(0.05)  # long enough for the other update to arrive meanwhile
        out = await real(ev, *step)
        spans.append(("end", ev.channel))
        return out

    assistant._handle = slow  # type: ignore[method-assign]
    first = asyncio.create_task(assistant.handle(Incoming("telegram", "42", text="/log")))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(assistant.handle(Incoming("narrow", "zs", text="巡视")))
    await asyncio.gather(first, second)
    assert spans == [("start", "telegram"), ("end", "telegram"),
                     ("start", "narrow"), ("end", "narrow")]
    assert numbered(second.result())[6] == "7. 7号台区"  # it answered the form /log opened


async def test_button_data_over_the_channels_limit_fails_loudly(
        services: Services, caplog: pytest.LogCaptureFixture) -> None:
    """Never sent cut (a cut callback would press something else): logged, and the user
    gets the usual apology."""
    tiny = dataclasses.replace(NARROW, max_button_data=8)
    core = Assistant(services)
    core.register_channel("tiny", tiny)
    await make_user(services, "王五", channel="tiny", external_id="ww")
    out = await Chat(core, "tiny", "ww").say("/cancel")  # a few menu buttons: they fit
    assert [r.text for r in out.replies] == [L("error.internal")]
    assert "button data over 8 bytes" in caplog.text
