"""Issue #15 §1: reading what managers actually type (work-log sentences, parts of the day,
punctuation after keywords, small talk, quiet hours in words, amounts in Chinese numerals)."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.i18n import t
from bot.services import Services
from bot.storage.db import from_iso
from tests.conftest import SHANGHAI, Chat, at


def zh(key: str, **kwargs: object) -> str:
    return t("zh_CN", key, **kwargs)


# --- §1.3 punctuation after a keyword is glue, not content -------------------------------
async def test_colon_after_repair_keyword_is_not_stored_in_the_fault(zhang: Chat) -> None:
    await zhang.say("报修：5号台区 2号杆倒了")
    assert "台区 5号台区 · 故障情况 2号杆倒了" in zhang.text
    assert "：" not in zhang.text.split("故障情况")[1].splitlines()[0]


async def test_colon_after_log_keyword_keeps_the_work_item(zhang: Chat) -> None:
    await zhang.say("记录：宣传 3号台区 安全用电")
    assert "工作项目 宣传 · 台区 3号台区 · 工作内容 安全用电" in zhang.text


async def test_colon_after_register_customer_keyword(zhang: Chat) -> None:
    await zhang.say("登记特殊客户：3号台区 李四")
    assert "户名 李四 · 台区 3号台区" in zhang.text


async def test_colon_after_outage_keyword_is_not_part_of_the_area(zhang: Chat) -> None:
    await zhang.say("计划停电：7号台区")
    assert "「7号台区」不是你负责的台区" in zhang.text


# --- §1.4 small talk ------------------------------------------------------------------------
@pytest.mark.parametrize(("said", "key"), [
    ("谢谢", "thanks"), ("谢谢！", "thanks"), ("好的", "ack"), ("收到", "ack"),
    ("收到啦", "ack"), ("你好", "hello"), ("您好！", "hello")])
async def test_small_talk_gets_one_friendly_line(zhang: Chat, said: str, key: str) -> None:
    await zhang.say(said)
    assert zhang.text == zh(f"menu.small_talk.{key}", name="张三")
    assert "没看懂" not in zhang.text and "\n" not in zhang.text


# --- §1.1 sentences that start (and fill) a work log --------------------------------------
@pytest.mark.parametrize(("said", "filled"), [
    ("今天上午去3号台区巡视了，发现2号杆拉线松动",
     "工作项目 巡视 · 台区 3号台区 · 时间 2026-11-27 周五"),
    ("今天上午去3号台区巡视了，发现2号杆拉线松动",
     "工作内容 3号台区巡视 · 发现问题 2号杆拉线松动"),
    ("今天上午去3号台区巡视了发现2号杆拉线松动已经通知抢修",
     "工作内容 3号台区巡视 · 发现问题 2号杆拉线松动已经通知抢修"),
    ("巡视5号台区，3号表箱有漏电隐患", "工作内容 5号台区巡视 · 发现问题 3号表箱有漏电隐患"),
    ("3号台区巡视", "工作项目 巡视 · 台区 3号台区"),
    ("3号台曲巡视", "工作项目 巡视 · 台区 3号台区"),
    ("巡式3号台区", "工作项目 巡视 · 台区 3号台区"),
])
async def test_field_sentences_start_a_filled_work_log(zhang: Chat, said: str,
                                                       filled: str) -> None:
    await zhang.say(said)
    assert filled in zhang.text
    assert "没看懂" not in zhang.text


async def test_a_problem_in_the_sentence_is_not_asked_again(zhang: Chat) -> None:
    await zhang.say("今天上午去3号台区巡视了，发现2号杆拉线松动")
    assert zh("form.worklog.problems") not in zhang.text
    assert zh("form.worklog.photos") in zhang.text  # the next thing not yet said


async def test_a_word_one_typo_from_two_meanings_is_not_guessed(zhang: Chat) -> None:
    await zhang.say("服装店")  # 服装 is one character from 服务, but names no area: no log
    assert zhang.text.startswith("没看懂")


async def test_all_clear_goes_to_the_summary_and_offers_the_rest_there(zhang: Chat) -> None:
    await zhang.say("巡视3号台区 无异常")
    assert "工作内容 无异常" in zhang.text
    await zhang.press("现在")
    assert zh("form.summary_title", title=zh("form.worklog.title")) in zhang.text
    assert zh("form.worklog.problems") not in zhang.text
    await zhang.press("➕ 发现问题")
    assert zh("form.worklog.problems") in zhang.text
    await zhang.say("顺手清了个鸟窝")
    assert "发现问题：顺手清了个鸟窝" in zhang.text
    await zhang.press("➕ 照片")
    await zhang.photo("p1")
    await zhang.press("完成")
    assert "照片：" in zhang.text and "➕ 照片" not in str(zhang.last)
    await zhang.press("➕ 位置")
    await zhang.location(31.8, 117.2)
    assert "位置：31.80000, 117.20000" in zhang.text
    out = await zhang.press("保存")
    assert "✅" in out.replies[0].text


@pytest.mark.parametrize("said", ["巡视3号台区 未发现异常", "3号台区巡视，设备运行正常",
                                  "巡视3号台区没问题", "巡视3号台区，未见异常"])
async def test_nothing_wrong_is_not_read_as_a_problem(zhang: Chat, said: str) -> None:
    await zhang.say(said)
    await zhang.press("现在")
    assert "发现问题：" + zh("form.empty") in zhang.text
    assert "➕ 发现问题" in str(zhang.last)


# --- §1.2 the part of the day is kept -------------------------------------------------------
@pytest.mark.parametrize(("said", "shown"), [
    ("今天上午去3号台区巡视了", "2026-11-27 周五 09:00（按「上午」默认时间，可修改）"),
    ("巡视3号台区 11月25日下午", "2026-11-25 周三 15:00（按「下午」默认时间，可修改）"),
    ("上周五下午走访5号台区", "2026-11-20 周五 15:00（按「下午」默认时间，可修改）"),
    ("前天晚上巡视3号台区", "2026-11-25 周三 20:00（按「晚上」默认时间，可修改）"),
    ("昨晚巡视3号台区", "2026-11-26 周四 20:00（按「晚上」默认时间，可修改）"),
])
async def test_a_part_of_day_takes_its_default_hour_and_says_so(zhang: Chat, said: str,
                                                               shown: str) -> None:
    await zhang.say(said)
    assert f"时间 {shown}" in zhang.text


async def test_the_default_hour_is_saved_and_a_typed_part_of_day_too(
        zhang: Chat, services: Services) -> None:
    await zhang.say("昨晚巡视3号台区 无异常")
    await zhang.press("保存")
    await zhang.say("走访5号台区 王大爷家")
    await zhang.say("前天晚上")  # typed at the time step
    assert "时间：" not in zhang.text  # not the summary yet: the next step
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    assert "时间：2026-11-25 周三 20:00（按「晚上」默认时间，可修改）" in zhang.text
    await zhang.press("保存")
    rows = await services.db.fetchall(
        "SELECT occurred_at, time_precision FROM worklogs ORDER BY id")
    local = [(from_iso(r["occurred_at"]).astimezone(SHANGHAI).strftime("%m-%d %H:%M"),
              r["time_precision"]) for r in rows]
    assert local == [("11-26 20:00", "minute"), ("11-25 20:00", "minute")]


async def test_a_part_of_day_said_while_it_lasts_is_not_a_future_hour(
        zhang: Chat, clock: FakeClock) -> None:
    at(clock, 2026, 11, 27, 8, 20)
    await zhang.say("上午巡视3号台区 无异常")
    assert "2026-11-27 周五 08:20（按「上午」默认时间，可修改）" in zhang.text
    assert zh("form.summary_title", title=zh("form.worklog.title")) in zhang.text


# --- §1.5 quiet hours in words ----------------------------------------------------------------
@pytest.mark.parametrize(("said", "window"), [
    ("晚上10点到早上7点", "22:00–07:00"), ("晚上十点到早上七点半", "22:00–07:30"),
    ("22点-7点", "22:00–07:00"), ("22:00-07:00", "22:00–07:00"), ("21:30至6:45", "21:30–06:45")])
async def test_quiet_hours_typed_as_people_say_them(zhang: Chat, said: str,
                                                    window: str) -> None:
    await zhang.say("/quiet")
    await zhang.say(said)
    assert f"免打扰时段：{window}" in zhang.text
    await zhang.press("保存")
    await zhang.say("/settings")
    assert f"免打扰时段：{window}" in zhang.text


@pytest.mark.parametrize("said", ["晚上10点", "10点到10点", "25:00-07:00", "明天到后天"])
async def test_quiet_hours_not_a_window_are_refused(zhang: Chat, said: str) -> None:
    await zhang.say("/quiet")
    await zhang.say(said)
    assert zh("settings.quiet_invalid", text=said) in zhang.text


# --- §1.6 amounts in Chinese numerals ---------------------------------------------------------
async def test_arrears_amount_said_in_chinese_numerals(zhang: Chat, services: Services) -> None:
    await zhang.say("/arrears")
    await zhang.say("5500099999")
    await zhang.say("赵大")
    await zhang.say("几百块")
    assert zh("arrears.amount.words", text="几百块") in zhang.text
    assert "350.5" in zhang.text  # the example is in digits
    await zhang.say("三百五十块五")
    assert "欠费金额（元）？" not in zhang.text
    await zhang.say("10月1日")
    await zhang.press("否")
    assert "欠费金额：￥350.50" in zhang.text
    await zhang.press("保存")
    row = await services.db.fetchone("SELECT amount_cents FROM arrears")
    assert row is not None and row[0] == 35050


@pytest.mark.parametrize(("sentence", "shown"), [
    ("登记欠费 5500099999 赵大 一千二百五十元", "￥1,250.00"),
    ("登记欠费 5500099999 赵大 1.2万", "￥12,000.00"),
    ("登记欠费：5500099999 赵大 三百元", "￥300.00")])
async def test_arrears_sentence_with_chinese_amount(zhang: Chat, sentence: str,
                                                    shown: str) -> None:
    await zhang.say(sentence)
    assert f"欠费金额 {shown}" in zhang.text


async def test_a_part_of_the_day_right_after_the_area_is_the_time(zhang: Chat,
                                                                 clock: FakeClock) -> None:
    """'巡视 3号台区 上午 发现…': 上午 is when, with its default hour, not the work done."""
    at(clock, 2026, 12, 1, 12, 39)
    await zhang.say("巡视 3号台区 上午 发现2号杆拉线松动")
    assert "时间 2026-12-01 周二 09:00（按「上午」默认时间，可修改）" in zhang.text
    assert "工作内容 上午" not in zhang.text and "发现问题 2号杆拉线松动" in zhang.text
    assert "什么时候做的" not in zhang.text
