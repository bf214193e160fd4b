"""Issue #10 §1: features are routers the composition root lists; a new feature plugs in
without editing the core, the list's order is the free-text priority, and button data
already on phones (before actions were namespaced by feature) keeps working."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from openpyxl import load_workbook

from bot import i18n
from bot.assistant import Assistant
from bot.channels.telegram import TELEGRAM_CAPS
from bot.events import Button, Outcome
from bot.features import FEATURES, build_router
from bot.features.reports import handlers as reports
from bot.forms.engine import FormSpec, Saved
from bot.forms.fields import Field, Kind
from bot.handlers.menu import command_descriptions
from bot.models import Role
from bot.router import ReportPart, ReportScope, Router, by_id
from bot.services import Ctx, Services
from bot.textutil import normalize_input
from tests.conftest import Chat, make_user

if TYPE_CHECKING:
    from bot.storage.conversations import Draft

# The example feature of CONTRIBUTING.md: its locale entries, as locales/<loc>/publicity.json.
PUBLICITY_LOCALES = {
    "zh_CN": {"form.publicity.title": "宣传记录", "field.publicity_topic": "宣传主题",
              "form.publicity.topic": "宣传的主题是什么？",
              "publicity.saved": "已登记宣传：{topic}",
              "publicity.card": "宣传 #{id}", "btn.publicity_open": "查看宣传",
              "cmd.publicity": "登记宣传", "publicity.report": "宣传：{n} 次",
              "publicity.sheet": "宣传", "publicity.help": "说“宣传 主题”登记一次宣传"},
    "en": {"form.publicity.title": "Publicity", "field.publicity_topic": "Topic",
           "form.publicity.topic": "What was the publicity about?",
           "publicity.saved": "Publicity recorded: {topic}", "publicity.card": "Publicity #{id}",
           "btn.publicity_open": "Open", "cmd.publicity": "Record publicity",
           "publicity.report": "Publicity: {n}", "publicity.sheet": "Publicity",
           "publicity.help": "Say 'publicity TOPIC' to record one"},
}


def publicity_feature() -> Router:
    """A minimal 宣传 feature, written the way CONTRIBUTING.md shows: one router."""
    router = Router("publicity")
    topics: list[str] = []  # a real feature keeps them in its own table (its store)

    async def save(ctx: Ctx, values: dict[str, Any], token: str,
                   meta: dict[str, Any]) -> Saved:
        topics.append(values["topic"])
        return Saved(ctx.t("publicity.saved", topic=values["topic"]),
                     [[Button(ctx.t("btn.publicity_open"), router.callback("open", 7))]])

    form = router.form(FormSpec(
        name="publicity", title="form.publicity.title",
        fields=(Field("topic", "field.publicity_topic", "form.publicity.topic", Kind.TEXT),),
        save=save, quick={}))

    @router.command("publicity")
    async def command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
        return await app.open_form(ctx, draft, form.name)

    @router.intent
    async def intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
        s = normalize_input(text)
        if not s.startswith("宣传"):
            return None
        topic = s.removeprefix("宣传").strip()
        return await app.engine.start(ctx, form.name, {"topic": topic} if topic else None)

    async def card(ctx: Ctx, rid: int) -> Outcome:
        return Outcome().add(ctx.t("publicity.card", id=rid))

    router.button("open")(by_id(card))

    @router.report_section
    async def report(db: Any, scope: ReportScope) -> ReportPart:
        if not topics:
            return ReportPart()  # nothing to say: no line, no sheet
        return ReportPart([i18n.t(scope.locale, "publicity.report", n=len(topics))],
                          i18n.t(scope.locale, "publicity.sheet"),
                          [i18n.t(scope.locale, "field.publicity_topic")],
                          [[t] for t in topics],
                          [(i18n.t(scope.locale, "publicity.sheet"), len(topics))])

    router.help_lines.append("publicity.help")
    return router


@pytest.fixture
def publicity_locales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The locales folder as it is, plus the example feature's own catalog files."""
    locales = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES_DIR, locales)
    for loc, entries in PUBLICITY_LOCALES.items():
        (locales / loc / "publicity.json").write_text(json.dumps(entries, ensure_ascii=False),
                                                      encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALES_DIR", locales)
    i18n.catalog.cache_clear()
    yield
    i18n.catalog.cache_clear()


def root_with(extra: Router, *, first: bool) -> Router:
    """The composition root as bot.features builds it, with one more feature listed."""
    root = Router()
    routers = [f.router for f in FEATURES]
    for r in [extra, *routers] if first else [*routers, extra]:
        root.include_router(r)
    return root


async def chat_with(services: Services, root: Router) -> Chat:
    core = Assistant(services, router=root)
    core.register_channel("test", TELEGRAM_CAPS)
    await make_user(services, "张三")
    return Chat(core, "test", "张三")


@pytest.mark.usefixtures("publicity_locales")
async def test_a_new_feature_plugs_in_without_touching_the_core(services: Services) -> None:
    root = root_with(publicity_feature(), first=True)  # 宣传 is a work item too: before the log
    zhang = await chat_with(services, root)
    await zhang.say("/publicity")
    assert "宣传的主题是什么？" in zhang.text
    await zhang.say("安全用电进社区")
    await zhang.press("保存")
    assert "已登记宣传：安全用电进社区" in zhang.text
    await zhang.press("查看宣传")
    assert zhang.text == "宣传 #7"
    await zhang.say("宣传 防窃电")  # its sentence starter, read by its own intent
    assert "宣传主题" in zhang.text and "防窃电" in zhang.text
    assert ("publicity", "登记宣传") in command_descriptions("zh_CN", root)  # the / menu


async def test_the_roots_order_is_the_free_text_priority(services: Services) -> None:
    """A sentence both a feature and the work log could read goes to the one listed first."""
    claims = Router("claims")

    @claims.intent
    async def patrol(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
        return Outcome().add("claimed") if text.startswith("巡视") else None

    first = await chat_with(services, root_with(claims, first=True))
    await first.say("巡视 3号台区")
    assert first.text == "claimed"
    last = Chat(Assistant(services, router=root_with(claims, first=False)), "test", "张三")
    await last.say("巡视 3号台区")
    assert "什么时候做的" in last.text  # the work log, listed before it, read the sentence


async def test_buttons_are_namespaced_and_old_button_data_still_works(zhang: Chat) -> None:
    await zhang.say("巡视 3号台区 昨天下午3点 2号杆拉线松动")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    assert "已保存工作日志 #1" in zhang.text
    view = [b.data for r in zhang.last.replies for row in r.buttons for b in row
            if b.label == "查看"]
    assert view == ["-|worklog.log|1"]
    shown = (await zhang.tap("-|worklog.log|1")).replies[0].text
    assert (await zhang.tap("-|log|1")).replies[0].text == shown  # sent before the namespaces
    assert "2号杆拉线松动" in shown


def test_two_features_claiming_one_name_fail_at_start() -> None:
    one, two = Router("one"), Router("two")
    for r in (one, two):
        r.command("same")(publicity_feature().commands["publicity"])
    root = Router().include_router(one)
    with pytest.raises(ValueError, match="command 'same' is declared twice"):
        root.include_router(two)


def test_the_composition_root_lists_every_feature_once() -> None:
    root = build_router()
    assert [f.router.name for f in FEATURES] == [
        "todo", "arrears", "complaints", "meters", "connections", "outages", "worklog_first",
        "repairs", "hazards", "reports", "tasks", "plans", "notes", "customers", "lineloss",
        "worklog"]
    assert set(root.legacy_actions.values()) <= set(root.buttons)
    assert all("." in action for action in root.buttons)


@pytest.mark.usefixtures("publicity_locales")
async def test_a_new_feature_joins_the_report_and_help_without_touching_them(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    root = root_with(publicity_feature(), first=True)
    monkeypatch.setattr(reports, "app_router", lambda: root)
    monkeypatch.setattr("bot.handlers.menu.app_router", lambda: root)
    zhang = await chat_with(services, root)
    await zhang.say("/report")
    assert "宣传" not in zhang.text  # nothing recorded: the section says nothing
    await zhang.say("宣传 安全用电进社区")
    await zhang.press("保存")
    out = await zhang.say("/report")
    assert "宣传：1 次" in zhang.text
    [doc] = [a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    sheet = load_workbook(io.BytesIO(doc.data))["宣传"]
    assert [c.value for c in sheet[2]] == ["安全用电进社区"]
    await zhang.say("/help")
    assert "说“宣传 主题”登记一次宣传" in zhang.text


async def test_work_then_record_is_a_log_by_the_roots_order(zhang: Chat) -> None:
    """`抢修记录 …` names the work, then 记录: a work-log entry, not a new repair. Kept apart by
    the composition root (the work log's starter before repairs), not by a look-ahead in the
    repairs sentence reader."""
    from bot.features import repairs

    assert "(?!" not in repairs._INTENT.pattern
    await zhang.say("抢修记录 3号台区 更换熔断器")
    assert "新工作日志" in zhang.text
    assert "工作内容 更换熔断器" in zhang.text and "台区 3号台区" in zhang.text
    await zhang.say("取消")
    await zhang.press("确定放弃")
    await zhang.say("抢修 3号台区 变压器冒烟")  # the repair's own sentence still opens one
    assert "新报修登记" in zhang.text


async def test_loose_photos_are_kept_by_the_work_log_not_the_core(services: Services) -> None:
    """A photo with no form open is the work log's to keep (for its next entry), through its
    router: an assistant without the work log keeps nothing out of sight and says so."""
    root = Router()
    for feature in FEATURES:
        if feature.router.name != "worklog":
            root.include_router(feature.router)
    zhang = await chat_with(services, root)
    await zhang.photo("p1")
    assert "没有保存" in zhang.text
    await zhang.location(31.8, 117.2)
    assert "没有保存" in zhang.text
    assert await services.db.fetchone("SELECT 1 FROM loose_media") is None
    full = Chat(Assistant(services, router=build_router()), "test", "张三")
    await full.photo("p2")
    assert "照片先替你留着（已留 1 张" in full.text


@pytest.mark.usefixtures("publicity_locales")
async def test_a_new_features_figures_are_drawn_on_the_team_chart(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_reports import png_description, png_of

    root = root_with(publicity_feature(), first=True)
    monkeypatch.setattr(reports, "app_router", lambda: root)
    zhang = await chat_with(services, root)
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    lead = Chat(zhang.assistant, "test", "王班长")
    await zhang.say("宣传 安全用电进社区")
    await zhang.press("保存")
    out = await lead.say("/report 本周")
    assert ["宣传", 1] in png_description(png_of(out).data)["sections"]
