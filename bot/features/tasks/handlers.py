"""派任务 (a lead gives a task: `派任务 张三 明天下班前 核对5号台区特殊客户电话`, /task) and
上报 (a manager sends a matter up: `上报 …`, /up). Each assignee gets the task at once as a
push with 接受 / 提问 / 完成; questions, answers, results, matters sent up and the lead's
replies travel as reminder rows too, so none is lost or doubled. Reminders before the
deadline, escalation to the lead who gave it, /todo, `任务` (/tasks) and the weekly report."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import i18n
from bot.deadlines import working_hours_before
from bot.events import Button, Outcome, Reply, callback
from bot.features.tasks import deadline as dl
from bot.features.tasks.store import (
    MESSAGE_SUBJECT,
    STORE,
    SUBJECT,
    Message,
    Task,
    counts_by_manager,
    counts_read,
    in_quiet_read,
    load_message,
    message_read,
    quiet_sql,
    seen_by,
    send_message_into,
    send_up_into,
    task_rules,
    team_managers,
    visible_message,
)
from bot.features.worklog.form import attach_loose, drop_loose, parse_text, show_photos
from bot.forms.engine import FormEngine, FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.kinds import now_value
from bot.forms.matching import Choice, match_choice
from bot.records import runtime as rt
from bot.records.common import remaining, ruleset, show_time, step_calendar, value_time, when
from bot.router import (
    ReminderKind,
    ReportPart,
    ReportScope,
    ReportSection,
    Router,
    TodoItem,
    TodoRead,
    any_one_id,
)
from bot.services import Ctx
from bot.storage.batch import Batch, IfNew
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import PlannedFor, PlannedRung, Reminder, Reminders
from bot.textutil import after_keyword, normalize_input

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

router = Router("tasks")
ALL = "all"  # the assignee value meaning the whole team (全班)
WHO_TYPED = "who_typed"  # meta: names in the sentence that matched no manager
_GIVE = re.compile(r"^(派任务|派活|下达任务|布置任务)\s*(.*)$", re.S)
_UP = re.compile(r"^(上报)\s*(.*)$", re.S)
_LIST = re.compile(r"^(任务|我的任务|任务列表|任务清单)$")
_NAME_SPLIT = re.compile(r"[、,，/;；和\s]+")
_NAME_JOIN = re.compile(r"\s*[、,，/;；和]")  # another name follows
_WHOLE_TEAM = {"全班", "全体", "所有人", "大家", "all"}
_LOOKS_LIKE_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$|^[A-Za-z]{2,20}$")
CONTENT_WIDTH = 16  # how much of a task's content a title shows
NAMES_SHOWN = 10  # the people in quiet hours a task's reply names; the rest it counts
router.request_patterns += [_GIVE, _UP]


# --- who ----------------------------------------------------------------------------------
async def assignee_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(ALL, ctx.t("task.whole_team")),
            *(Choice(str(uid), name) for uid, name in await team_managers(ctx))]


async def match_assignees(ctx: Ctx, text: str) -> tuple[list[str], list[str]]:
    """(the managers `张三、李四` / `全班` names, the names that matched nobody)."""
    choices = await assignee_choices(ctx)
    picked: list[str] = []
    unknown: list[str] = []
    for part in (p for p in _NAME_SPLIT.split(text) if p):
        if part.lower() in _WHOLE_TEAM:
            value: str | None = ALL
        else:
            found = match_choice(part, choices[1:]).unambiguous
            value = found.value if found else None
        if value is None:
            unknown.append(part)
        elif value not in picked:
            picked.append(value)
    return picked, unknown


def close_names(name: str, choices: list[Choice], limit: int = 3) -> list[Choice]:
    """Managers a mistyped name may mean: the usual close matches, else the same surname,
    else any character in common (张山 -> 张三: too short for a spelling distance)."""
    close = match_choice(name, choices).suggestions
    if not close:
        close = [c for c in choices if c.label[:1] == name[:1]]
    if not close:
        close = [c for c in choices if set(c.label) & set(name)]
    return close[:limit]


async def who_unknown(ctx: Ctx, picked: list[str], name: str, token: str) -> Invalid:
    """'不认识「张山」' with one button per close name; a button keeps the names already
    understood (`张三、李某` -> 张三 and the 李四 tapped)."""
    choices = (await assignee_choices(ctx))[1:]
    close = close_names(name, choices)
    buttons = [Button(c.label, callback(token, "who", ".".join([*picked, c.value])))
               for c in close]
    options = "、".join(c.label for c in choices) or ctx.t("task.no_managers")
    if close:
        return Invalid("task.who_did_you_mean", buttons=[buttons], text=name,
                       options="、".join(c.label for c in close))
    return Invalid("task.who_unknown", text=name, options=options)


async def parse_assignees(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    picked, unknown = await match_assignees(ctx, text)
    if unknown:
        raise await who_unknown(ctx, [p for p in picked if p != ALL], unknown[0], form.token)
    if not picked:
        raise Invalid("task.who_unknown", text=text,
                      options="、".join(n for _, n in await team_managers(ctx)))
    return picked


async def show_assignees(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return assignee_words(ctx, value, await team_managers(ctx))


def assignee_words(ctx: Ctx, value: list[str], managers: list[tuple[int, str]]) -> str:
    if ALL in value:
        return ctx.t("task.whole_team")
    names = dict((str(uid), name) for uid, name in managers)
    return "、".join(names.get(v, "?") for v in value)


def assignee_ids(value: list[str], managers: list[int]) -> list[int]:
    """The managers a saved task goes to (全班: everyone in the team now)."""
    if ALL in value:
        return managers
    return [int(v) for v in value if v.isdigit() and int(v) in managers]


async def pick_assignees(engine: FormEngine, ctx: Ctx, draft: Draft, arg: str) -> Outcome:
    """A 'did you mean' button: these managers answer the assignee step."""
    valid = {c.value for c in await assignee_choices(ctx)}
    picked = [v for v in arg.split(".") if v in valid]
    if not picked:
        return await engine.reprompt(ctx, draft, ctx.t("form.button_not_now"))
    draft.state.values["assignees"] = picked
    if draft.state.step == "assignees":
        return await engine.on_action(ctx, draft, "keep", "")
    return await engine.reprompt(ctx, draft)


# --- the deadline -------------------------------------------------------------------------
def check_ahead(ctx: Ctx, at: datetime) -> None:
    if at <= ctx.now:
        raise Invalid("task.deadline_past", when=when(ctx, at), now=when(ctx, ctx.now))


async def parse_deadline(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    found = dl.read_deadline(ctx, text)
    if found is None:
        raise Invalid("task.deadline_unparsed", text=text)
    check_ahead(ctx, found[0])
    return {"at": iso(found[0]), "has_time": True}


# --- the task form ------------------------------------------------------------------------
async def area_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(str(a.id), a.name)
            for a in sorted(await ctx.team_areas(), key=lambda a: a.id)]  # the step's read


async def show_area(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return next((c.label for c in await area_choices(ctx) if c.value == value), "?")


def title(ctx: Ctx, rec: Task) -> str:
    content = rec.content if len(rec.content) <= CONTENT_WIDTH \
        else rec.content[:CONTENT_WIDTH - 1] + "…"
    return ctx.t("task.title", id=rec.id, content=content)


async def write_task(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Writing:
    """One task per assignee with its push and deadline ladder, saved with the form's close
    in one round trip. To the team's managers as the step's read found them (全班, and who
    left: bot.storage.team_managers), with whom the pushes wait for (quiet hours)."""
    managers = await team_managers(ctx)
    ids = assignee_ids(values["assignees"], [uid for uid, _ in managers])
    if not ids:
        raise Invalid("task.nobody")
    due = value_time(values["due"])
    check_ahead(ctx, due)
    rules = ruleset(ctx.services)
    soon = working_hours_before(due, float(task_rules()["remind_before_working_hours"]),
                                await step_calendar(ctx), rules.working_hours)
    batch = Batch()
    # One INSERT of the tasks and one of their reminders, whatever their number (on
    # PostgreSQL a table written by two statements costs a round trip per statement).
    created = STORE.insert_rows_into(batch, [(f"{token}:{uid}", {
        "team_id": ctx.user.team_id, "user_id": uid, "lead_id": ctx.user.id,
        "content": values["content"],
        "area_id": int(values["area"]) if values.get("area") else None,
        "customer": values.get("customer") or None, "due_at": iso(due),
        "report_id": meta.get("report_id"), "created_at": iso(ctx.now)}) for uid in ids])
    rungs: list[tuple[IfNew, PlannedFor]] = []
    for uid, tid in zip(ids, created, strict=True):
        # The push now, then the ladder as plan_ladder plans it (to the lead who gave it);
        # none for a task this form token saved before.
        rungs += [(IfNew(tid), p) for p in (
            PlannedFor(uid, PlannedRung("new", ctx.now, True, False)),
            *([PlannedFor(uid, PlannedRung("due.soon", soon, False, False))]
              if soon > ctx.now else []),
            PlannedFor(uid, PlannedRung("due.due", max(due, ctx.now), False, False)),
            PlannedFor(ctx.user.id, PlannedRung("due.escalate", max(due, ctx.now), False,
                                                True)))]
    Reminders.plan_records_into(batch, rungs, team_id=ctx.user.team_id, subject=SUBJECT,
                                now=ctx.now, quiet=quiet_sql(ctx))
    in_quiet = batch.read_rows(*in_quiet_read(ctx, None if ALL in values["assignees"] else ids))
    who = assignee_words(ctx, values["assignees"], managers)

    async def saved(first: int | None) -> Saved:
        assert first is not None
        chosen = set(ids)
        waiting = [str(r["name"]) for r in in_quiet.value if int(r["id"]) in chosen]
        text = ctx.t("task.saved", who=who, count=len(ids), content=values["content"],
                     due=when(ctx, due), left=remaining(ctx, due),
                     told=told_when(ctx, waiting, len(ids)))
        buttons = [[TASKS.open_button(ctx, first)]] if len(ids) == 1 else []
        buttons.append([Button(ctx.t("btn.task_list"), router.callback("list"))])
        return Saved(text, buttons, record_id=first)

    return Writing(batch, created[0], saved)


def told_when(ctx: Ctx, waiting: list[str], count: int) -> str:
    """When the assignees hear of their task: at once, or (those in quiet hours, `waiting`)
    when their quiet hours end, as the write held their push (quiet_sql)."""
    if not waiting:
        return ctx.t("task.told_now")
    if len(waiting) == count:
        return ctx.t("task.told_quiet")
    who = "、".join(waiting[:NAMES_SHOWN])
    if len(waiting) > NAMES_SHOWN:  # a whole team at night: the reply stays one message
        who = ctx.t("task.names_and_more", names=who, count=len(waiting))
    return ctx.t("task.told_some_quiet", who=who)


async def show_due(value: dict[str, Any], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return await show_time(value, ctx, form)


TASK = router.form(FormSpec(
    name="task",
    title="form.task.title",
    fields=(
        Field("assignees", "field.task_assignees", "form.task.assignees", Kind.MULTI,
              choices=assignee_choices, parse=parse_assignees, show=show_assignees),
        Field("due", "field.task_due", "form.task.due", Kind.TIME, parse=parse_deadline,
              show=show_due, hint="form.task.due.hint"),
        Field("content", "field.task_content", "form.task.content", Kind.TEXT,
              parse=parse_text),
        Field("area", "field.area", "form.task.area", Kind.CHOICE, required=False,
              choices=area_choices, show=show_area),
        Field("customer", "field.task_customer", "form.task.customer", Kind.TEXT,
              required=False, parse=parse_text),
    ),
    save=None,
    write=write_task,
    quick={},
    actions={"who": pick_assignees},
    on_open=lambda ctx, draft: unknown_names_notice(ctx, draft),
))
OPTIONAL = ("area", "customer")  # offered on the summary, not asked one by one


async def unknown_names_notice(ctx: Ctx, draft: Draft) -> Reply | None:
    """Names in the sentence that matched nobody: say so, with 'did you mean' buttons."""
    typed = draft.state.meta.pop(WHO_TYPED, None)
    if not typed:
        return None
    picked, unknown = await match_assignees(ctx, typed)
    if not unknown:
        return None
    exc = await who_unknown(ctx, [p for p in picked if p != ALL], unknown[0], draft.token)
    return Reply("⚠️ " + ctx.t(exc.key, **exc.kwargs), exc.buttons)


async def leading_names(ctx: Ctx, text: str) -> tuple[list[str], str]:
    """The managers (or 全班) a sentence starts with, spaced or not ('张三、李四明天下班前 …'),
    and the text after them."""
    labels = sorted([*((c.label, c.value) for c in (await assignee_choices(ctx))[1:]),
                     *((w, ALL) for w in _WHOLE_TEAM)], key=lambda lv: -len(lv[0]))
    picked: list[str] = []
    rest = text
    while True:
        s = _NAME_SPLIT.sub("", rest[:1]) + rest[1:] if picked else rest.lstrip()
        hit = next(((label, value) for label, value in labels if s.startswith(label)), None)
        if hit is None:
            return picked, rest
        if hit[1] not in picked:
            picked.append(hit[1])
        rest = s[len(hit[0]):]


async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """'张三、李四 明天下班前 核对5号台区特殊客户电话' -> assignees, deadline, content (and the
    台区 it names)."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    meta: dict[str, Any] = {}
    named, after = await leading_names(ctx, rest)
    first, _, remainder = rest.strip().partition(" ")
    if named and not _NAME_JOIN.match(after):  # '张三 李四明天…': names, then no other name
        values["assignees"], rest = named, after
    elif first and dl.read_deadline(ctx, first) is None:
        picked, unknown = await match_assignees(ctx, first)
        if picked and not unknown:
            values["assignees"], rest = picked, remainder
        elif all(_LOOKS_LIKE_NAME.match(p) for p in _NAME_SPLIT.split(first) if p):
            meta[WHO_TYPED], rest = first, remainder
    found = dl.read_deadline(ctx, rest)
    if found is not None:
        at, phrase = found
        rest = rest.replace(phrase, " ", 1)
        try:
            check_ahead(ctx, at)
            values["due"] = {"at": iso(at), "has_time": True}
        except Invalid as exc:
            notices["due"] = "⚠️ " + ctx.t(exc.key, **exc.kwargs)
    content = " ".join(rest.split()).strip("：:，, ")
    if content:
        with contextlib.suppress(Invalid):  # refused: asked for at its own step
            values["content"] = await parse_text(content, ctx)
        area = next((c for c in sorted(await area_choices(ctx), key=lambda c: -len(c.label))
                     if c.label in content), None)
        if area is not None:
            values["area"] = area.value
    return values, notices, meta


async def start_task_form(app: Assistant, ctx: Ctx, draft: Draft | None, text: str,
                          meta: dict[str, Any] | None = None) -> Outcome:
    if not ctx.user.sees_whole_team:
        return Outcome().add(ctx.t("task.leads_only"))
    if draft is not None or not text:
        return await app.open_form(ctx, draft, TASK.name)
    values, notices, more = await prefill(ctx, text)
    return await app.engine.start(ctx, TASK.name, values or None, notices,
                                  meta={**(meta or {}), **more}, offer=OPTIONAL)


@router.command("task")
async def task_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await start_task_form(app, ctx, draft, after_keyword(arg))


@router.intent
async def task_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    s = normalize_input(text)
    if m := _GIVE.match(s):
        return await start_task_form(app, ctx, None, m.group(2).strip())
    if m := _UP.match(s):
        return await start_up_form(app, ctx, None, m.group(2).strip())
    if _LIST.match(s):
        return await task_list(ctx)
    return None


# --- accept, ask, done --------------------------------------------------------------------
def is_assignee(ctx: Ctx, rec: Task) -> bool:
    return rec.user_id == ctx.user.id


async def accept(ctx: Ctx, rid: int) -> Outcome:
    """One round trip: the change, guarded in SQL (the assignee's task, still open: a second
    tap changes nothing), and after it the task and its questions for the card, worded with
    the change applied (on PostgreSQL the reads see the task as before it)."""
    now = iso(ctx.now)
    batch = Batch()
    done = batch.update("UPDATE tasks SET status = 'accepted', accepted_at = ?, updated_at = ? "
                        "WHERE id = ? AND status = 'open' AND user_id = ? AND team_id = ?",
                        (now, now, rid, ctx.user.id, ctx.user.team_id), rid)
    found = batch.read_rows(*STORE.by_id(rid))
    questions = batch.read_rows(*conversation_read(rid))
    played = await ctx.services.db.write_batch(batch)
    rec = STORE.seen_by(ctx, next(iter(STORE.records(found.value)), None))
    if rec is None:
        return Outcome().add(ctx.t(TASKS.not_found))
    if not played.changed(done):  # not theirs, or not open any more: the card as it is
        return await render_card(ctx, rec, read=[questions.value])
    out = Outcome(toast=ctx.t("task.accepted_toast"))
    card = await render_card(ctx, dataclasses.replace(rec, status="accepted",
                                                      accepted_at=ctx.now),
                             ctx.t("task.accepted", item=title(ctx, rec)), read=[questions.value])
    out.replies += card.replies
    return out


async def write_question(ctx: Ctx, values: dict[str, Any], token: str,
                         meta: dict[str, Any]) -> Writing:
    """The question and its push to the lead, in one round trip: the task as the form's
    opener read it (kept), and still not done checked in SQL (a guard that changes nothing)."""
    rec = await TASKS.kept(ctx, meta)
    if not is_assignee(ctx, rec) or rec.status == "done":
        raise Invalid("task.not_yours")
    batch = Batch()
    batch.update("UPDATE tasks SET status = status WHERE id = ? AND status != 'done'",
                 (rec.id,), rec.id, declined="task.not_yours")
    send_message_into(batch, ctx, "question", values["question"], [rec.lead_id], token=token,
                      task_id=rec.id)

    async def saved(_: int | None) -> Saved:
        return TASKS.saved(ctx, rec.id, ctx.t("task.asked", lead=rec.lead))

    return Writing(batch, rec.id, saved)


async def write_done(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Writing:
    """Done, its ladder dropped and the lead told, in one round trip (the task as the form's
    opener read it); nothing of it when the task was done meanwhile (a second tap, another
    device)."""
    rec = await TASKS.kept(ctx, meta)
    if not is_assignee(ctx, rec):
        raise Invalid("task.not_yours")
    photos = list(values.get("photos") or [])
    batch = Batch()
    batch.update("UPDATE tasks SET status = 'done', done_at = ?, result = ?, photos = ?, "
                 "updated_at = ? WHERE id = ? AND status != 'done'",
                 (iso(ctx.now), values["result"], json.dumps(photos, ensure_ascii=False),
                  iso(ctx.now), rec.id), rec.id, declined="task.already_done")
    Reminders.cancel_into(batch, SUBJECT, rec.id)
    send_message_into(batch, ctx, "done", values["result"], [rec.lead_id], token=token,
                      task_id=rec.id, photos=photos)

    async def saved(_: int | None) -> Saved:
        return TASKS.saved(ctx, rec.id, ctx.t("task.done", item=title(ctx, rec), lead=rec.lead)
                           + " " + rt.on_time(ctx, ctx.now, rec.due_at))

    return Writing(batch, rec.id, saved)


# The transitions' small forms (rt.action_form's), declared as writes.
ASK = FormSpec(name="task_ask", title="form.task_ask.title",
               fields=(Field("question", "field.task_question", "form.task_ask.question",
                             Kind.TEXT, parse=parse_text),),
               save=None, write=write_question, quick={"now": now_value})
# Photos sent just before (with no form open) go with the result, as with a work log.
DONE = FormSpec(name="task_done", title="form.task_done.title",
                fields=(Field("result", "field.task_result", "form.task_done.result",
                              Kind.TEXT, parse=parse_text),
                        Field("photos", "field.photos", "form.task_done.photos", Kind.PHOTOS,
                              required=False, show=show_photos)),
                save=None, write=write_done, quick={"now": now_value}, on_open=attach_loose,
                actions={"loose_drop": drop_loose})


def active_for_assignee(ctx: Ctx, rec: Task) -> bool:
    return is_assignee(ctx, rec) and rec.status != "done"


# --- the card and the list ----------------------------------------------------------------
async def render_card(ctx: Ctx, rec: Task, heading: str | None = None, *,
                      read: Sequence[list[Row]]) -> Outcome:
    """`read`: the questions and answers, read with the record (TASKS.card_reads)."""
    lines = [*([heading] if heading else []), title(ctx, rec),
             ctx.t(f"task.status.{rec.status}"),
             rt.field_line(ctx, "field.task_content", rec.content),
             rt.field_line(ctx, "field.task_lead", rec.lead),
             rt.field_line(ctx, "field.task_owner", rec.owner),
             rt.deadline_line(ctx, "field.task_due", rec.due_at, rec.done_at, "task.done_at",
                              judge=True)]
    if rec.area_name:
        lines.append(rt.field_line(ctx, "field.area", rec.area_name))
    if rec.customer:
        lines.append(rt.field_line(ctx, "field.task_customer", rec.customer))
    if rec.result:
        lines.append(rt.field_line(ctx, "field.task_result", rec.result))
    lines += [ctx.t(f"task.line.{r['kind']}", who=r["name"], text=r["body"]) for r in read[0]]
    buttons = await TASKS.allowed(ctx, rec)
    return Outcome(replies=[Reply("\n".join(lines), [buttons] if buttons else [],
                                  photos=rec.photo_refs)])


def conversation_read(task_id: int) -> Read:
    """The questions and answers about a task, oldest first."""
    return ("SELECT m.kind, m.body, u.name FROM task_messages m "
            "JOIN users u ON u.id = m.sender_id "
            "WHERE m.task_id = ? AND m.kind IN ('question', 'answer') ORDER BY m.id", (task_id,))


def open_tasks_read(ctx: Ctx) -> Read:
    """Open tasks in the user's scope: a lead's whole team, a manager's own."""
    return STORE.open_read(ctx, "t.status != 'done'", order="ORDER BY t.due_at, t.id")


async def open_tasks(ctx: Ctx) -> list[Task]:
    return STORE.records(await ctx.services.db.fetchall(*open_tasks_read(ctx)))


async def task_list(ctx: Ctx) -> Outcome:
    tasks = await open_tasks(ctx)
    if not tasks:
        return Outcome().add(ctx.t("task.list_empty"))
    lines = [ctx.t("task.list_title", count=len(tasks))]
    for rec in tasks:
        late = "⚠️ " if rec.due_at <= ctx.now else "• "
        who = ctx.t("todo.owned", owner=rec.owner, text="") if ctx.user.sees_whole_team else ""
        lines.append(late + who + ctx.t("task.list_line", item=title(ctx, rec),
                                        status=ctx.t(f"task.status.{rec.status}"),
                                        due=when(ctx, rec.due_at), left=remaining(ctx, rec.due_at)))
    buttons = [[TASKS.open_button(ctx, rec.id, ctx.t("task.todo_button", id=rec.id))]
               for rec in tasks[:8]]
    return Outcome().add("\n".join(lines), buttons)


@router.command("tasks")
async def tasks_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await task_list(ctx))


@router.button("list")
async def list_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await task_list(ctx)


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    return [TASKS.todo_item(ctx, rec, rec.due_at,
                            ctx.t("todo.task", item=title(ctx, rec), due=when(ctx, rec.due_at),
                                  left=remaining(ctx, rec.due_at)),
                            ctx.t("task.todo_button", id=rec.id))
            for rec in STORE.records(rows[0])]


# --- reminders about a task ---------------------------------------------------------------
async def render_task_reminder(ctx: Ctx, r: Reminder, rec: Task) -> Reply | None:
    """The new task pushed to its assignee, and the deadline ladder (soon / due to the
    assignee, escalate to the lead who gave it); None once done."""
    if rec.status == "done":
        return None
    own = await TASKS.allowed(ctx, rec) if is_assignee(ctx, rec) else []
    if r.kind == "new":
        lines = [ctx.t("task.push_new", lead=rec.lead, item=title(ctx, rec)),
                 *([rec.content] if len(rec.content) > CONTENT_WIDTH else []),
                 rt.field_line(ctx, "field.task_due", when(ctx, rec.due_at))
                 + f"（{remaining(ctx, rec.due_at)}）"]
        if rec.area_name:
            lines.append(rt.field_line(ctx, "field.area", rec.area_name))
        if rec.customer:
            lines.append(rt.field_line(ctx, "field.task_customer", rec.customer))
        return Reply("\n".join(lines), [own] if own else [[TASKS.open_button(ctx, rec.id)]])
    _, _, label = r.kind.partition(".")
    text = rt.ladder_text(ctx, label, title(ctx, rec), ctx.t("task.step.due"), rec.due_at,
                          rec.owner)
    if text is None:
        return None
    return Reply(text, [[TASKS.open_button(ctx, rec.id), *own]])


TASKS: rt.RecordType[Task] = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="tk", not_found="task.not_found",
    meta_key="task_id", title=title, render_card=render_card,
    card_reads=lambda ctx, rid: [conversation_read(rid)],
    transitions=(
        rt.Transition("tka", "btn.task_accept",
                      lambda ctx, t: is_assignee(ctx, t) and t.status == "open",
                      run_on_id=accept),
        rt.Transition("tkq", "btn.task_ask", active_for_assignee, ASK, "tkq",
                      "task.ask_heading"),
        rt.Transition("tkd", "btn.task_done", active_for_assignee, DONE, "tkd",
                      "task.done_heading"),
    ),
    other_reminders=render_task_reminder,
    todo_items=TodoRead(lambda ctx: [open_tasks_read(ctx)], todo)).register(router)


# --- messages: answers to questions, 上报 and replies -------------------------------------
def message_buttons(ctx: Ctx, msg: Message) -> list[list[Button]]:
    if msg.kind == "question":
        return [[Button(ctx.t("btn.task_answer"), router.callback("ans", msg.id)),
                 TASKS.open_button(ctx, msg.task_id or 0)]]
    if msg.kind == "report":
        return [[Button(ctx.t("btn.up_reply"), router.callback("rpl", msg.id)),
                 Button(ctx.t("btn.up_to_task"), router.callback("mk", msg.id))]]
    if msg.task_id is not None:
        return [[TASKS.open_button(ctx, msg.task_id)]]
    return []


async def render_message(ctx: Ctx, r: Reminder) -> Reply | None:
    msg = await visible_message_for(ctx, r.subject_id)
    if msg is None:
        return None
    item = ""
    if msg.task_id is not None:
        rec = await STORE.load(ctx.services.db, msg.task_id)
        item = title(ctx, rec) if rec else ctx.t("task.not_found")
    text = ctx.t(f"task.msg.{msg.kind}", who=msg.sender, item=item, text=msg.body)
    return Reply(text, message_buttons(ctx, msg), photos=list(msg.photos))


async def visible_message_for(ctx: Ctx, mid: int) -> Message | None:
    """A pushed message, for its recipient (a lead of the team, or the person answered)."""
    msg = await load_message(ctx.services.db, mid)
    return msg if msg is not None and msg.team_id == ctx.user.team_id else None


async def describe_message(ctx: Ctx, r: Reminder) -> str:
    msg = await visible_message_for(ctx, r.subject_id)
    return ctx.t("task.msg_short", who=msg.sender) if msg else ctx.t("task.not_found")


router.reminder_kind(MESSAGE_SUBJECT, ReminderKind(render=render_message,
                                                   describe=describe_message, snoozable=False))


def reply_form(name: str, field_name: str) -> FormSpec:
    async def write(ctx: Ctx, values: dict[str, Any], token: str,
                    meta: dict[str, Any]) -> Writing:
        return await write_reply(ctx, values[field_name], token, meta)
    return router.form(FormSpec(
        name=name, title=f"form.{name}.title",
        fields=(Field(field_name, f"field.{name}", f"form.{name}.prompt", Kind.TEXT,
                      parse=parse_text),),
        save=None, write=write, quick={}))


async def write_reply(ctx: Ctx, body: str, token: str, meta: dict[str, Any]) -> Writing:
    """A lead's answer to a question, or reply to a matter sent up: back to its sender, in
    one round trip (the message as the form's opener read it: a message never changes)."""
    msg = seen_by(ctx, await kept_message(ctx, meta))
    if msg is None or not ctx.user.sees_whole_team:
        raise Invalid("task.not_found")
    kind = "answer" if msg.kind == "question" else "reply"
    batch = Batch()
    send_message_into(batch, ctx, kind, body, [msg.sender_id], token=token,
                      task_id=msg.task_id, reply_to=msg.id)

    async def saved(_: int | None) -> Saved:
        return Saved(ctx.t("task.replied", who=msg.sender), [])

    return Writing(batch, None, saved)


KEPT_MESSAGE = "message"  # an answer's form meta: the message as its opener read it


async def kept_message(ctx: Ctx, meta: dict[str, Any]) -> Message | None:
    """The message a reply form answers, kept with the form; read for a form opened before
    it was kept."""
    kept = meta.get(KEPT_MESSAGE)
    if isinstance(kept, dict):
        return Message(**kept)
    return await load_message(ctx.services.db, int(meta["message_id"]))


ANSWER = reply_form("task_answer", "answer")
REPLY = reply_form("up_reply", "reply")


def message_opener(prefix: str, kinds: tuple[str, ...], form: FormSpec, heading: str) -> None:
    """`prefix<id>` opens `form` about message id (a lead's, of the kinds it answers)."""
    async def open_(app: Assistant, ctx: Ctx, mid: int) -> Outcome:
        msg = await visible_message(ctx, mid)
        if msg is None or msg.kind not in kinds or not ctx.user.sees_whole_team:
            return Outcome().add(ctx.t("task.not_found"))
        quote = ctx.t("task.quote", who=msg.sender, text=msg.body)
        return await app.engine.start(
            ctx, form.name, meta={"message_id": mid, KEPT_MESSAGE: dataclasses.asdict(msg)},
            heading=ctx.t(heading, quote=quote))
    router.openers[prefix] = open_


message_opener("tkans", ("question",), ANSWER, "task.answer_heading")
message_opener("tkrpl", ("report",), REPLY, "up.reply_heading")
# 回复 and 转为任务 read the message they are about with the step's read.
MESSAGE_READS = any_one_id(lambda ctx, mid: [message_read(mid)])
router.opener_button("ans", "tkans", reads=MESSAGE_READS)
router.opener_button("rpl", "tkrpl", reads=MESSAGE_READS)


@router.opener("tkmk")
async def task_from_report(app: Assistant, ctx: Ctx, mid: int) -> Outcome:
    """转为任务: the task form, prefilled with the manager who sent it up and the text."""
    msg = await visible_message(ctx, mid)
    if msg is None or msg.kind != "report" or not ctx.user.sees_whole_team:
        return Outcome().add(ctx.t("task.not_found"))
    values: dict[str, Any] = {"content": msg.body}
    if msg.sender_id in {uid for uid, _ in await team_managers(ctx)}:
        values["assignees"] = [str(msg.sender_id)]
    return await app.engine.start(ctx, TASK.name, values, meta={"report_id": mid},
                                  offer=OPTIONAL)


router.opener_button("mk", "tkmk", reads=MESSAGE_READS)


# --- 上报 --------------------------------------------------------------------------------
async def write_up(ctx: Ctx, values: dict[str, Any], token: str,
                   meta: dict[str, Any]) -> Writing:
    """A matter sent up to the team's leads, in one round trip: who they are is the write's
    to find (with none it is refused, up.no_lead), and read with it for the reply."""
    batch = Batch()
    leads = send_up_into(batch, ctx, values["matter"], token=token,
                         photos=list(values.get("photos") or []))

    async def saved(_: int | None) -> Saved:
        return Saved(ctx.t("up.sent", leads="、".join(str(r["name"]) for r in leads.value)), [])

    return Writing(batch, None, saved)


UP = router.form(FormSpec(
    name="up", title="form.up.title",
    fields=(Field("matter", "field.up_matter", "form.up.matter", Kind.TEXT, parse=parse_text),
            Field("photos", "field.photos", "form.up.photos", Kind.PHOTOS, required=False,
                  show=show_photos)),
    save=None, write=write_up, quick={}, on_open=attach_loose,
    actions={"loose_drop": drop_loose}))


async def start_up_form(app: Assistant, ctx: Ctx, draft: Draft | None, text: str) -> Outcome:
    if draft is not None or not text:
        return await app.open_form(ctx, draft, UP.name)
    with contextlib.suppress(Invalid):
        return await app.engine.start(ctx, UP.name, {"matter": await parse_text(text, ctx)},
                                      offer=("photos",))
    return await app.open_form(ctx, draft, UP.name)


@router.command("up")
async def up_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await start_up_form(app, ctx, draft, after_keyword(arg))


# --- the weekly report --------------------------------------------------------------------
def report_reads(scope: ReportScope) -> list[Read]:
    return [counts_read(scope.team_id, scope.person(), scope.start, scope.end, scope.now)]


def report_section(scope: ReportScope, read: list[list[Row]]) -> ReportPart:
    rows = counts_by_manager(read[0])
    if not rows:
        return ReportPart()

    def t(key: str, **kw: Any) -> str:
        return i18n.t(scope.locale, key, **kw)

    lines = [t("task.report_title")]
    lines += [t("task.report_line", who=who, given=given, done=done, overdue=overdue)
              for who, given, done, overdue in rows]
    header = [t("task.sheet_who"), t("task.sheet_given"), t("task.sheet_done"),
              t("task.sheet_overdue")]
    chart = [(t(f"task.chart.{k}"), sum(r[i] for r in rows))
             for i, k in ((1, "given"), (2, "done"), (3, "overdue"))]
    return ReportPart(lines, t("task.sheet"), header, [list(r) for r in rows], chart)


REPORT = router.report_section(ReportSection(report_reads, report_section))


router.help_lines += ["task.help", "up.help"]
