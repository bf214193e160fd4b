"""bot.shaping: outcomes fitted to a channel's caps (text size, buttons, edits, toasts), and
typed answers to numbered choices. Pure functions, no database."""

from __future__ import annotations

import pytest

from bot.channel import ChannelCaps
from bot.events import Attachment, Button, Outcome, Reply
from bot.shaping import Choice, label_key, needs_numbering, resolve_choice, shape, split_text

# WeCom's app messages: 2048 UTF-8 bytes, a button card of 6, no edit, no toasts.
BYTES = ChannelCaps(max_text=2048, text_unit="byte", max_buttons=6, max_button_data=1024,
                    can_edit=False, toasts=False, menus_per_language=False)
# Telegram's: 4096 characters, 64-byte callback data, edits and toasts.
CHARS = ChannelCaps(max_text=4096, text_unit="char", max_buttons=100, max_button_data=64,
                    can_edit=True, toasts=True, menus_per_language=True)
AREAS = [f"{i}号台区" for i in range(1, 9)]


def size(text: str) -> int:
    return len(text.encode())


def areas_reply(n: int = 8, per_row: int = 2) -> Reply:
    buttons = [Button(a, f"tok|pick|{i}") for i, a in enumerate(AREAS[:n], 1)]
    rows = [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]
    return Reply("在哪个台区？", rows)


# --- splitting text -----------------------------------------------------------------------
def test_cjk_splits_by_bytes_not_characters() -> None:
    text = "台" * 1000  # 1000 characters, 3000 bytes
    chunks = split_text(text, 2048, "byte")
    assert [size(c) for c in chunks] == [2046, 954]  # 682 whole characters, then the rest
    assert "".join(chunks) == text
    assert split_text(text, 4096, "char") == [text]  # the same text is one Telegram message


def test_four_byte_emoji_are_never_cut() -> None:
    text = "a" + "😀" * 600  # 1 + 2400 bytes
    chunks = split_text(text, 2048, "byte")
    assert [size(c) for c in chunks] == [2045, 356]  # 2049 would be one byte too many
    assert "".join(chunks) == text
    for c in chunks:
        c.encode("utf-8", errors="strict")  # whole code points only


def test_a_joined_emoji_stays_whole() -> None:
    family = "👨\u200d👩\u200d👧"  # three people joined by ZWJ: one picture
    text = "x" * 2040 + family + "y" * 10
    first, second = split_text(text, 2048, "byte")
    assert first == "x" * 2040 and second.startswith(family)
    skin = "👍🏽"  # a thumb and its skin tone
    first, second = split_text("x" * 2044 + skin, 2048, "byte")
    assert first == "x" * 2044 and second == skin


def test_prefers_line_breaks_and_drops_no_text() -> None:
    lines = [f"第{i}行：" + "巡视记录" * 20 for i in range(60)]
    text = "\n".join(lines)
    chunks = split_text(text, 2048, "byte")
    assert len(chunks) > 2 and all(size(c) <= 2048 for c in chunks)
    assert all(c.split("\n")[-1] in lines for c in chunks)  # every chunk ends a line
    assert "\n".join(chunks) == text


def test_char_unit_is_the_old_telegram_split() -> None:
    assert split_text("x" * 9000, 4096, "char") == ["x" * 4096, "x" * 4096, "x" * 808]
    text = "\n".join("字" * 100 for _ in range(100))  # 10,099 characters
    chunks = split_text(text, 4096, "char")
    assert [len(c) for c in chunks] == [4039, 4039, 2019]  # 40, 40 and 20 lines of 100 + 1


def test_long_reply_keeps_buttons_photos_and_files_on_its_last_part() -> None:
    att = Attachment("周报.xlsx", b"xlsx")
    reply = Reply("明细\n" + "台" * 1000, [[Button("打开", "-|log|1")]], ["telegram:abc"], [att])
    out, pending = shape(Outcome(replies=[reply]), BYTES)
    assert pending == []
    assert [r.buttons for r in out.replies] == [[], [[Button("打开", "-|log|1")]]]
    assert out.replies[-1].photos == ["telegram:abc"] and out.replies[-1].attachments == [att]
    assert out.replies[0].photos == [] and out.replies[0].attachments == []
    assert "".join(r.text for r in out.replies).replace("\n", "") == reply.text.replace("\n", "")


# --- buttons ------------------------------------------------------------------------------
def test_more_choices_than_buttons_are_numbered_in_the_text() -> None:
    out, pending = shape(Outcome(replies=[areas_reply(8)]), BYTES, choose_hint="回复编号")
    (reply,) = out.replies
    assert reply.buttons == []
    assert reply.text == ("在哪个台区？\n\n" + "\n".join(f"{i}. {i}号台区" for i in range(1, 9))
                          + "\n\n回复编号")
    assert pending == [Choice(f"{i}号台区", f"tok|pick|{i}") for i in range(1, 9)]
    assert needs_numbering(Outcome(replies=[areas_reply(8)]), BYTES)


def test_six_buttons_fit_and_stay_buttons() -> None:
    original = areas_reply(6)
    out, pending = shape(Outcome(replies=[original]), BYTES, choose_hint="回复编号")
    assert out.replies == [original] and pending == []
    assert not needs_numbering(Outcome(replies=[original]), BYTES)


def test_telegram_takes_eight_buttons_as_they_are() -> None:
    original = Outcome(replies=[areas_reply(8)])
    out, pending = shape(original, CHARS)
    assert out.replies == original.replies and pending == []


def test_numbers_continue_across_the_replies_of_one_outcome() -> None:
    outcome = Outcome(replies=[areas_reply(8), Reply("再选一个", areas_reply(7).buttons)])
    out, pending = shape(outcome, BYTES)
    assert "\n15. 7号台区" in out.replies[1].text and len(pending) == 15
    assert pending[14] == Choice("7号台区", "tok|pick|7")


def test_numbered_list_longer_than_a_message_is_split_too() -> None:
    buttons = [[Button(f"{i}号" + "很长的台区名称" * 20, f"tok|pick|{i}")] for i in range(40)]
    out, pending = shape(Outcome(replies=[Reply("在哪个台区？", buttons)]), BYTES)
    assert len(out.replies) > 1 and all(size(r.text) <= 2048 for r in out.replies)
    assert len(pending) == 40 and "40. 39号" in out.replies[-1].text


def test_toast_and_edit_become_replies_where_the_channel_has_neither() -> None:
    outcome = Outcome(replies=[Reply("下一步")], toast="已更新",
                      edit=Reply("已选：巡视", [[Button("完成", "tok|done|")]]))
    out, _ = shape(outcome, BYTES)
    assert out.toast is None and out.edit is None
    assert [r.text for r in out.replies] == ["已更新", "已选：巡视", "下一步"]
    same, _ = shape(outcome, CHARS)
    assert same.toast == "已更新" and same.edit == outcome.edit
    assert [r.text for r in same.replies] == ["下一步"]


def test_an_edit_too_long_for_one_message_is_sent_whole_instead() -> None:
    long = Reply("明细\n" + "字" * 5000, [[Button("完成", "tok|done|")]])
    out, _ = shape(Outcome(edit=long), CHARS)
    assert out.edit is None and len(out.replies) == 2
    assert out.replies[-1].buttons == long.buttons


def test_button_data_over_the_channel_limit_is_refused() -> None:
    data = "-|cust|" + "9" * 60  # 67 bytes
    outcome = Outcome().add("档案", [[Button("打开", data)]])
    with pytest.raises(ValueError, match="64 bytes"):
        shape(outcome, CHARS)
    assert shape(outcome, BYTES)[0].replies[0].buttons[0][0].data == data


# --- typed answers ------------------------------------------------------------------------
CHOICES = [Choice(f"{i}号台区", f"tok|pick|{i}") for i in range(1, 9)] + [
    Choice("☐ 巡视", "tok|tog|patrol"), Choice("⬅️ 上一步", "tok|back|")]


@pytest.mark.parametrize(("typed", "data"), [
    ("7", "tok|pick|7"), (" 7 ", "tok|pick|7"), ("７", "tok|pick|7"), ("7.", "tok|pick|7"),
    ("10", "tok|back|"), ("5号台区", "tok|pick|5"), ("５号台区", "tok|pick|5"),
    ("巡视", "tok|tog|patrol"), ("上一步", "tok|back|"), ("☐ 巡视", "tok|tog|patrol"),
])
def test_a_typed_number_or_label_resolves(typed: str, data: str) -> None:
    assert resolve_choice(typed, CHOICES) == data


@pytest.mark.parametrize("typed", ["0", "11", "99999", "巡", "9号台区", "", "台区", "-1"])
def test_anything_else_is_not_a_choice(typed: str) -> None:
    assert resolve_choice(typed, CHOICES) is None


def test_label_key() -> None:
    assert label_key("✔️ 完成") == "完成" and label_key("☑ Patrol") == "patrol"
