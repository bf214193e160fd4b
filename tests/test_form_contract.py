"""Issue #10 §3: the form contract. Conditional steps are declared (`Field.when`): a step
whose condition is false is not asked, keeps no value, and is left out of the summary and the
edit menu; an edit that makes it apply asks it, one that makes it not apply drops it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.events import Outcome
from bot.features import FEATURES
from bot.forms.engine import FormSpec, Saved
from bot.forms.fields import Field, FormView, Kind
from bot.forms.matching import Choice
from bot.router import Router
from bot.services import Ctx, Services
from tests.conftest import Chat
from tests.test_features import chat_with


def _fix_needed(values: Mapping[str, Any]) -> bool:
    return values.get("fix") == "yes"


def checked_feature(saved: list[dict[str, Any]]) -> Router:
    """A 隐患-like form: 整改期限 (here: the outage end's wording) only when 需要整改 is 是."""
    router = Router("checked")

    async def yes_no(ctx: Ctx) -> list[Choice]:
        return [Choice("yes", ctx.t("arrears.yes")), Choice("no", ctx.t("arrears.no"))]

    async def show_yes_no(value: str, ctx: Ctx, form: FormView) -> str:
        return ctx.t(f"arrears.{value}")

    async def save(ctx: Ctx, values: dict[str, Any], token: str,
                   meta: dict[str, Any]) -> Saved:
        saved.append(dict(values))
        return Saved("saved", [])

    form = router.form(FormSpec(
        name="checked", title="form.worklog.title",
        fields=(Field("fix", "field.arrears_prepaid", "form.arrears.prepaid", Kind.CHOICE,
                      choices=yes_no, show=show_yes_no),
                Field("fix_by", "field.outage_end", "form.outage.end", Kind.TEXT,
                      when=_fix_needed),
                Field("content", "field.content", "form.worklog.content", Kind.TEXT)),
        save=save, quick={}))

    @router.command("checked")
    async def open_checked(app: Any, ctx: Ctx, draft: Any, arg: str) -> Outcome:
        return await app.open_form(ctx, draft, form.name)

    return router


async def _chat(services: Services, saved: list[dict[str, Any]]) -> Chat:
    root = Router()
    for r in [checked_feature(saved), *(f.router for f in FEATURES)]:
        root.include_router(r)
    return await chat_with(services, root)


async def test_a_conditional_step_is_asked_only_when_it_applies(services: Services) -> None:
    saved: list[dict[str, Any]] = []
    zhang = await _chat(services, saved)
    await zhang.say("/checked")
    await zhang.press("否")
    assert "做了什么？" in zhang.text  # 结束 is not asked
    await zhang.say("更换表箱锁")
    assert "远程费控：否" in zhang.text and "工作内容：更换表箱锁" in zhang.text
    assert "结束" not in zhang.text  # nor shown on the summary
    await zhang.press("修改")
    labels = [b.label for row in zhang.last.replies[-1].buttons for b in row]  # type: ignore[union-attr]
    assert "结束" not in labels and "远程费控" in labels
    # An edit that makes the step apply asks it, then goes back to the summary.
    await zhang.press("远程费控")
    await zhang.press("是")
    assert "什么时候恢复送电" in zhang.text
    await zhang.say("下周五")
    assert "结束：下周五" in zhang.text and "工作内容：更换表箱锁" in zhang.text
    # And one that makes it not apply drops its value: neither shown nor saved.
    await zhang.press("修改")
    await zhang.press("远程费控")
    await zhang.press("否")
    assert "结束" not in zhang.text and "远程费控：否" in zhang.text
    await zhang.press("保存")
    assert saved == [{"fix": "no", "fix_by": None, "content": "更换表箱锁"}]


async def test_back_passes_over_a_step_that_does_not_apply(services: Services) -> None:
    saved: list[dict[str, Any]] = []
    zhang = await _chat(services, saved)
    await zhang.say("/checked")
    await zhang.press("是")
    await zhang.say("明天")
    assert "做了什么？" in zhang.text
    await zhang.press("上一步")
    assert "什么时候恢复送电" in zhang.text and "明天" in zhang.text
    await zhang.press("上一步")
    await zhang.press("否")  # the answer that made 结束 apply, changed
    assert "做了什么？" in zhang.text
    await zhang.press("上一步")
    assert "是远程费控" in zhang.text  # straight back to the question before: 结束 is gone


# --- field kinds carry their behaviour ----------------------------------------------------
def kinds_feature(saved: list[dict[str, Any]]) -> Router:
    """A form written with the field kinds only: no parser, display or 现在 of its own."""
    from bot.forms import kinds

    router = Router("kinded")

    async def save(ctx: Ctx, values: dict[str, Any], token: str,
                   meta: dict[str, Any]) -> Saved:
        saved.append(dict(values))
        return Saved("saved", [])

    form = router.form(FormSpec(
        name="kinded", title="form.arrears.title",
        fields=(kinds.account_no("account_no", "field.account_no", "form.arrears.account_no"),
                kinds.money("amount", "field.arrears_amount", "form.arrears.amount"),
                kinds.phone("phone", "field.phone", "form.customer.phone"),
                kinds.time("at", "field.time", "form.worklog.time")),
        save=save, quick={}))  # 现在 comes with the time kind

    @router.command("kinded")
    async def open_kinded(app: Any, ctx: Ctx, draft: Any, arg: str) -> Outcome:
        return await app.open_form(ctx, draft, form.name)

    return router


async def test_field_kinds_read_check_and_show_their_values(services: Services) -> None:
    saved: list[dict[str, Any]] = []
    root = Router()
    for r in [kinds_feature(saved), *(f.router for f in FEATURES)]:
        root.include_router(r)
    zhang = await chat_with(services, root)
    await zhang.say("/kinded")
    await zhang.say("12345")
    assert "户号" in zhang.text and "⚠️" in zhang.text  # too short: asked again, politely
    await zhang.say("5500012345")
    await zhang.say("五百几")
    assert "例如 350.5" in zhang.text and "欠费金额（元）？" in zhang.text
    await zhang.say("1,200.50")
    await zhang.say("12")
    assert "⚠️" in zhang.text
    await zhang.say("13800001234")
    assert "什么时候做的" in zhang.text
    await zhang.say("明天上午9点")
    assert "⚠️" in zhang.text and "什么时候做的" in zhang.text  # not in the future
    await zhang.press("现在")
    assert "户号：5500012345" in zhang.text and "欠费金额：￥1,200.50" in zhang.text
    assert "13800001234" in zhang.text
    await zhang.press("保存")
    assert saved[0]["amount"] == 120050 and saved[0]["at"]["has_time"] is True


async def test_a_long_choice_list_is_paged(services: Services) -> None:
    """A lead with many 台区: the area step shows a page of buttons with ◀️ ▶️; a typed name
    matches any of them, on whatever page."""
    from bot.assistant import Assistant
    from bot.channels.telegram import TELEGRAM_CAPS
    from tests.conftest import make_user

    areas = tuple(f"{i}号台区" for i in range(1, 16))
    core = Assistant(services)
    core.register_channel("test", TELEGRAM_CAPS)
    await make_user(services, "张三", areas=areas)
    zhang = Chat(core, "test", "张三")
    await zhang.say("记录巡视")
    labels = [b.label for row in zhang.last.replies[-1].buttons for b in row]  # type: ignore[union-attr]
    assert "1号台区" in labels and "12号台区" in labels and "13号台区" not in labels
    await zhang.press("下一页")
    shown = zhang.last.edit  # type: ignore[union-attr]
    assert shown is not None
    labels = [b.label for row in shown.buttons for b in row]
    assert "13号台区" in labels and "1号台区" not in labels and "◀️ 上一页" in labels
    await zhang.press("14号台区")
    assert "什么时候做的" in zhang.text
    await zhang.press("上一步")
    await zhang.say("15号台区")  # typed: matched whatever page is on screen
    assert "什么时候做的" in zhang.text


async def test_no_field_name_is_special_to_the_engine(services: Services) -> None:
    """Photos go to the form's PHOTOS field whatever its name, their captions where that
    field says (`notes`), not under a name the engine knows."""
    from bot.events import Incoming
    from bot.forms import kinds

    saved: list[dict[str, Any]] = []
    router = Router("pictured")

    async def save(ctx: Ctx, values: dict[str, Any], token: str,
                   meta: dict[str, Any]) -> Saved:
        saved.append(dict(values))
        return Saved("saved", [])

    router.form(FormSpec(
        name="pictured", title="form.worklog.title",
        fields=(kinds.text("what", "field.content", "form.worklog.content"),
                kinds.photos("pics", "field.photos", "form.worklog.photos", notes="captions")),
        save=save, quick={}))

    @router.command("pictured")
    async def open_it(app: Any, ctx: Ctx, draft: Any, arg: str) -> Outcome:
        return await app.open_form(ctx, draft, "pictured")

    root = Router()
    for r in [router, *(f.router for f in FEATURES)]:
        root.include_router(r)
    zhang = await chat_with(services, root)
    await zhang.say("/pictured")
    await zhang.say("更换表箱")
    zhang.last = await zhang.assistant.handle(
        Incoming("test", "张三", photo="p1", text="换下来的旧表箱"))
    await zhang.press("完成")
    await zhang.press("保存")
    assert saved == [{"what": "更换表箱", "pics": ["test:p1"],
                      "captions": {"test:p1": "换下来的旧表箱"}}]
