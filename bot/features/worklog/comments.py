"""批注: a lead of the author's team comments on a manager's log entry. The author is told at
once (a push row, so it is never lost), and the comment shows on the card and on paper."""

from __future__ import annotations

from typing import Any

from bot.events import Button, Outcome, Reply
from bot.features.worklog.form import parse_text
from bot.forms.engine import FormSpec, Saved
from bot.forms.fields import Field, Invalid, Kind
from bot.models import WorkLog
from bot.router import feature_callback
from bot.services import Ctx
from bot.storage.reminders import Reminder, Reminders
from bot.storage.worklogs import WorkLogs
from bot.timeparse import format_time

SUBJECT = "worklog_comment"  # reminders: the author told of a comment
FEATURE = "worklog"
OPENER = "lc"  # `lc<id>`: comment on entry id


def may_comment(ctx: Ctx, w: WorkLog) -> bool:
    """Only a lead (or admin) of the author's team, on someone else's entry."""
    return ctx.user.sees_whole_team and w.team_id == ctx.user.team_id \
        and w.user_id != ctx.user.id


def comment_button(ctx: Ctx, w: WorkLog) -> Button | None:
    if not may_comment(ctx, w):
        return None
    return Button(ctx.t("btn.log_comment"), feature_callback(FEATURE, "logcmt", w.id))


def comment_lines(ctx: Ctx, w: WorkLog) -> list[str]:
    return [ctx.t("logs.comment_line", author=c.author, body=c.body,
                  when=format_time(c.created_at.astimezone(ctx.tz), ctx.locale))
            for c in w.comments]


def _items(ctx: Ctx, w: WorkLog) -> str:
    return "、".join(ctx.t(f"item.{k}") for k in w.items)


def heading(ctx: Ctx, w: WorkLog) -> str:
    return ctx.t("log_comment.heading", id=w.id, author=w.user_name, areas=w.areas_text,
                 items=_items(ctx, w))


def refusal(ctx: Ctx, w: WorkLog) -> Outcome:
    return Outcome().add(ctx.t("log_comment.not_allowed", id=w.id), [[Button(
        ctx.t("btn.view"), feature_callback(FEATURE, "log", w.id))]])


async def save(ctx: Ctx, values: dict[str, Any], token: str, meta: dict[str, Any]) -> Saved:
    """Store the comment and plan the author's push in one transaction: told exactly once."""
    w = await ctx.services.worklogs.get_for(ctx.user, int(meta["worklog_id"]))
    if w is None:
        raise Invalid("logs.not_found")
    if not may_comment(ctx, w):  # the role may have changed while the form was open
        raise Invalid("log_comment.not_allowed", id=w.id)
    async with ctx.services.db.tx() as tx:
        cid = await WorkLogs.add_comment(tx, ctx.user, w.id, values["body"], ctx.now, token)
        if cid is not None:
            await Reminders.plan(
                tx, team_id=w.team_id, user_id=w.user_id, subject=SUBJECT, subject_id=cid,
                kind="told", due_at=ctx.now, now=ctx.now,
                detail={"worklog_id": w.id, "lead": ctx.user.name, "body": values["body"],
                        "areas": w.areas_text, "items": list(w.items)})
    return Saved(ctx.t("log_comment.saved", id=w.id, name=w.user_name),
                 [[Button(ctx.t("btn.view"), feature_callback(FEATURE, "log", w.id))]],
                 record_id=w.id)


async def render_told(ctx: Ctx, r: Reminder) -> Reply:
    d = r.detail
    items = "、".join(ctx.t(f"item.{k}") for k in d.get("items", []))
    return Reply(ctx.t("log_comment.pushed", lead=d.get("lead", ""), id=d.get("worklog_id"),
                       areas=d.get("areas", ""), items=items, body=d.get("body", "")),
                 [[Button(ctx.t("btn.view"),
                          feature_callback(FEATURE, "log", d.get("worklog_id", 0)))]])


COMMENT = FormSpec(
    name="log_comment",
    title="form.log_comment.title",
    fields=(Field("body", "field.log_comment", "form.log_comment.body", Kind.TEXT,
                  parse=parse_text),),
    save=save,
    quick={},
)
