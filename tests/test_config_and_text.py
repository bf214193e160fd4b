"""Settings, locales, intents, matching and message splitting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import ROOT, SettingsError, load_settings
from bot.conversations.matching import Choice, match_choice
from bot.handlers.intents import simple_intent, worklog_intent
from bot.i18n import catalog, catalog_files, t
from bot.textutil import normalize_input
from tests.conftest import T0


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.telegram_token is None and s.timezone == "Asia/Shanghai" and s.locale == "zh_CN"
    assert s.form_timeout_minutes == 30 and s.db_path == ROOT / "data" / "taiqu.db"
    assert s.form_park_hours == 24
    assert s.db_busy_timeout_seconds == 30 and s.db_write_wait_seconds == 2
    assert s.telegram_base_url == "https://api.telegram.org/bot"


def test_env_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAIQU_FORM_TIMEOUT_MINUTES=45\nTAIQU_LOCALE=en\n",
                                   encoding="utf-8")
    monkeypatch.setenv("TAIQU_TELEGRAM_BASE_URL", "http://127.0.0.1:8081/bot")
    s = load_settings()
    assert s.form_timeout_minutes == 45 and s.locale == "en"
    assert s.telegram_base_url == "http://127.0.0.1:8081/bot"


@pytest.mark.parametrize(("var", "value"), [
    ("TAIQU_TIMEZONE", "Mars/Base"), ("TAIQU_FORM_TIMEOUT_MINUTES", "abc"),
    ("TAIQU_FORM_TIMEOUT_MINUTES", "0"), ("TAIQU_FORM_PARK_HOURS", "0"), ("TAIQU_LOCALE", "fr"),
    ("TAIQU_DB_WRITE_WAIT_SECONDS", "0"),
    ("TAIQU_TELEGRAM_TOKEN", "not a token"),
])
def test_bad_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, var: str,
                                           value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value) and "\n" not in str(err.value)


def test_locales_have_the_same_keys_and_placeholders() -> None:
    zh, en = catalog("zh_CN"), catalog("en")  # also fails on a key defined in two files
    assert set(zh) == set(en)
    assert [p.name for p in catalog_files("zh_CN")[1:]] == [
        p.name for p in catalog_files("en")[1:]]
    field = re.compile(r"\{(\w+)")
    for key in zh:
        assert set(field.findall(zh[key])) == set(field.findall(en[key])), key


def test_every_locale_key_used_in_code_exists() -> None:
    zh = catalog("zh_CN")
    used: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*(?:[\w.]+,\s*)?["']([a-z_]+\.[\w.]+)["']""",
                               path.read_text(encoding="utf-8")))
        used |= set(re.findall(r"""["']((?:form|field|btn|menu|help|start|logs|media|button|"""
                               r"""terminal|lang|error|todo|digest|reminder|settings|customer|"""
                               r"""customers|audit|cmd|complaint|deadline|time)\.[\w.]+)["']""",
                               path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in zh)
    assert not missing


def test_translation_falls_back_and_formats() -> None:
    assert t("en", "form.photos_count", count=2) == "2 photo(s)"
    assert t("xx", "form.photos_count", count=2) == "2 张"


@pytest.mark.parametrize(("text", "items", "area", "when", "content"), [
    ("记录巡视 3号台区", ["patrol"], "3号台区", None, None),
    ("巡视 3号台区", ["patrol"], "3号台区", None, None),
    ("记录 走访 5号台区 昨天下午3点", ["visit"], "5号台区", "2026-11-26 15:00", None),
    ("巡视 3号台区 昨天下午3点 2号杆拉线松动", ["patrol"], "3号台区", "2026-11-26 15:00",
     "2号杆拉线松动"),
    ("记录巡视3号台区", ["patrol"], "3号台区", None, None),
    ("巡视 走访 城东2号台区", ["patrol", "visit"], "城东2号台区", None, None),
    ("记录日志", [], None, None, None),
    ("巡视 3号", ["patrol"], "3号", None, None),
    # a leading time phrase, filler words and 了/过/完 do not hide the work item
    ("今天巡视了3号台区", ["patrol"], "3号台区", "2026-11-27 00:00", None),
    ("昨天走访了5号台区", ["visit"], "5号台区", "2026-11-26 00:00", None),
    ("上午去3号台区巡视了", ["patrol"], "3号台区", "2026-11-27 00:00", None),
    ("刚才巡视3号台区", ["patrol"], "3号台区", "2026-11-27 10:30", None),
    ("昨天下午3点巡视了3号台区", ["patrol"], "3号台区", "2026-11-26 15:00", None),
    ("我前天又去5号台区走访了王大爷", ["visit"], "5号台区", "2026-11-25 00:00", "王大爷"),
    ("走访了5号台区王大爷家", ["visit"], "5号台区", None, "王大爷家"),
    ("巡视完3号台区，2号杆拉线松动", ["patrol"], "3号台区", None, "2号杆拉线松动"),
    ("巡视过 3号台区", ["patrol"], "3号台区", None, None),
    ("巡视了、走访了 5号台区", ["patrol", "visit"], "5号台区", None, None),
    ("巡视3号台区了", ["patrol"], "3号台区", None, None),
    ("走访了解 5号台区 用电情况", ["visit"], "5号台区", None, "了解 用电情况"),  # 了解 is a word
    # issue #15: what was found (发现…) goes to 发现问题, not the content
    ("巡视过程中 3号台区 发现鸟窝", ["patrol"], "3号台区", None, "过程中"),
    ("巡视 3号台区 11.26下午3点 2号杆", ["patrol"], "3号台区", "2026-11-26 15:00", "2号杆"),
    ("巡视 3号台区 9点", ["patrol"], "3号台区", "2026-11-27 09:00", None),  # 21:00 is ahead
    ("今天对3号台区进行了巡视", ["patrol"], "3号台区", "2026-11-27 00:00", None),
    ("今天巡视了一下3号台区", ["patrol"], "3号台区", "2026-11-27 00:00", None),
    ("昨天走访5号台区的王大爷", ["visit"], "5号台区", "2026-11-26 00:00", "王大爷"),
    ("今天上午9点巡视了3号台区，发现2号杆拉线松动", ["patrol"], "3号台区", "2026-11-27 09:00",
     None),
])
def test_worklog_intent(text: str, items: list[str], area: str | None, when: str | None,
                        content: str | None) -> None:
    intent = worklog_intent(text, T0, ["3号台区", "5号台区", "城东2号台区"])
    assert intent is not None
    assert intent.items == items and intent.area_text == area and intent.content == content
    got = intent.time.value.strftime("%Y-%m-%d %H:%M") if intent.time else None
    assert got == when


@pytest.mark.parametrize("text", ["你好呀", "3号台区", "今天天气不错", "报告", "在吗",
                                  "今天3号台区停电了", "今天的巡视计划", "对了 你好"])
def test_not_a_worklog_intent(text: str) -> None:
    assert worklog_intent(text, T0, ["3号台区"]) is None


def test_simple_intents() -> None:
    assert simple_intent("我的日志") == "logs" and simple_intent(" 帮助 ") == "help"
    assert simple_intent("随便说说") is None


def test_matching_suggests_never_guesses() -> None:
    areas = [Choice("1", "3号台区"), Choice("2", "5号台区"), Choice("3", "城东13号台区")]
    assert match_choice("３号台区", areas).exact == areas[0]  # full-width digits folded
    assert match_choice("3号", areas).exact is None
    assert match_choice("3号", areas).suggestions == [areas[0]]
    assert match_choice("9号台区", areas).suggestions == []
    assert match_choice("", areas).exact is None


def split_message(text: str) -> list[str]:
    from bot.channels.telegram import TELEGRAM_CAPS
    from bot.shaping import split_text

    return split_text(text, TELEGRAM_CAPS.max_text, TELEGRAM_CAPS.text_unit)


def test_normalize_and_split() -> None:
    assert normalize_input("  巡视\u3000３号台区 ") == "巡视 3号台区"
    text = "\n".join(f"第{i}行" + "字" * 100 for i in range(200))
    chunks = split_message(text)  # Telegram's caps: 4096 characters
    assert all(len(c) <= 4096 for c in chunks) and len(chunks) > 1
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")
    assert split_message("x" * 9000) == ["x" * 4096, "x" * 4096, "x" * 808]
