"""Issue #15 §1: reading what managers actually type (work-log sentences, parts of the day,
punctuation after keywords, small talk, quiet hours in words, amounts in Chinese numerals)."""

from __future__ import annotations

import pytest

from bot.i18n import t
from tests.conftest import Chat


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


# --- §1.4 small talk ------------------------------------------------------------------------
@pytest.mark.parametrize(("said", "key"), [
    ("谢谢", "thanks"), ("谢谢！", "thanks"), ("好的", "ack"), ("收到", "ack"),
    ("收到啦", "ack"), ("你好", "hello"), ("您好！", "hello")])
async def test_small_talk_gets_one_friendly_line(zhang: Chat, said: str, key: str) -> None:
    await zhang.say(said)
    assert zhang.text == zh(f"menu.small_talk.{key}", name="张三")
    assert "没看懂" not in zhang.text and "\n" not in zhang.text
