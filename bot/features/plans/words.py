"""How a plan and its items read: months, days, item words (a 台区's patrols numbered, 结转
marked), states and grades."""

from __future__ import annotations

from datetime import date

from bot import i18n
from bot.features.plans.store import Item, Month, Plan
from bot.services import Ctx


def month_label(ctx: Ctx, month: Month) -> str:
    return ctx.t("plan.month", year=month.year, month=month.month)


def day_label(ctx: Ctx, day: date) -> str:
    return ctx.t("plan.day", month=day.month, day=day.day)


def item_label(ctx: Ctx, it: Item, ordinal: int = 0) -> str:
    """'巡视 3号台区（第1次）', '走访 王大爷（3号台区）', or the free item's text."""
    if it.kind == "visit":
        text = ctx.t("plan.item.visit", name=it.customer_name or "?", area=it.area_name or "")
    elif it.kind == "patrol":
        text = ctx.t("plan.item.patrol", area=it.area_name or "?")
        if ordinal:
            text += ctx.t("plan.item.nth", n=ordinal)
    else:
        text = it.body
    return (ctx.t("plan.carried") if it.carried else "") + text


def labels(ctx: Ctx, items: list[Item]) -> dict[int, str]:
    """Each item's words; a 台区's patrols of this month numbered (第1次, 第2次)."""
    seen: dict[int, int] = {}
    out = {}
    for it in items:
        n = 0
        if it.kind == "patrol" and not it.carried and it.area_id is not None:
            n = seen[it.area_id] = seen.get(it.area_id, 0) + 1
        out[it.id] = item_label(ctx, it, n)
    patrol_areas = [it.area_id for it in items if it.kind == "patrol" and not it.carried]
    for it in items:  # a 台区 patrolled once a month needs no 第1次
        if it.kind == "patrol" and not it.carried and patrol_areas.count(it.area_id) == 1:
            out[it.id] = item_label(ctx, it)
    return out


def status_label(ctx: Ctx, plan: Plan) -> str:
    return ctx.t(f"plan.status.{plan.status}")


def grade_label(locale: str, grade: str | None) -> str:
    key = f"plan.grade.{grade}"
    text = i18n.t(locale, key)
    return grade or "" if text == key else text


def done_count(items: list[Item]) -> int:
    return sum(1 for it in items if it.done_at is not None)


def item_lines(ctx: Ctx, items: list[Item]) -> list[str]:
    words = labels(ctx, items)
    lines = []
    for n, it in enumerate(items, 1):
        mark = "✅" if it.done_at else "⬜"
        line = ctx.t("plan.line", n=n, mark=mark, item=words[it.id], day=day_label(ctx, it.due_on))
        if it.note and not it.done_at:
            line += ctx.t("plan.line_note", note=it.note)
        lines.append(line)
    return lines
