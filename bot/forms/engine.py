"""The engine that walks any declared form: prompts, parsing, back / skip / cancel / edit /
help / retries / prefill / expiry, with the state written to the database on every step."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from bot import validators
from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback, pager, parse_callback
from bot.forms.fields import EMPTY, PHOTO_NOTES, Field, FormView, Invalid, Kind
from bot.forms.kinds import NOW, now_value
from bot.forms.matching import Choice, match_choice
from bot.i18n import catalog
from bot.services import Ctx
from bot.shaping import MAX_TYPED_CHOICE, by_label
from bot.storage.batch import Batch, Declined, Played, Ref, Unchanged
from bot.storage.conversations import Draft, FormState
from bot.storage.db import Read, from_iso, iso
from bot.textutil import normalize_input

log = logging.getLogger(__name__)

SUMMARY = "__summary__"
EDIT_MENU = "__edit__"
AUTOFILLED = "autofilled"  # meta: fields the form filled itself, which a later fill may redo
RETRY_HINT_AFTER = 2  # after this many invalid answers in a row, show the examples again
# Meta flag while the cancel question is on screen: a typed 是 / 确定放弃 answers it, and is
# never taken as the answer to the step behind it.
CANCEL_ASKED = "cancel_asked"
# Meta of a form opened while another was set aside for it: the one to take up again once
# this one is saved or cancelled (one draft per person; the set-aside one rides along).
SET_ASIDE = "set_aside"
CHOICE_PAGE = "choice_page"  # meta: {"step", "offset"} of a long choice list's page on screen
# Meta: {"step", "buttons": [[label, data], ...]}: what the form's latest reply showed besides
# its step's own keyboard (a refusal's 「📂 打开已有档案」 or 你是不是要找 names, a long list's
# ◀️ ▶️), so that their label typed next presses them (`offered_button`): who sees them as
# text or numbers (WeCom, the local chat) types what they say. Stored with the step's draft.
OFFERED = "offered"


@dataclass(frozen=True)
class Saved:
    text: str
    buttons: list[list[Button]]
    record_id: int | None = None  # what was saved: a second 保存 press answers with its number


# (ctx, values, form token, meta) -> Saved; meta carries e.g. the id of an entry being edited.
SaveFn = Callable[[Ctx, dict[str, Any], str, dict[str, Any]], Awaitable[Saved]]


@dataclass(frozen=True)
class Writing:
    """A save declared as its writes (bot.storage.batch) instead of run: the engine adds the
    form's close to them and runs both as one transaction, in one round trip (issue #12: the
    保存 step is then a step like any other, its read and one write). `saved` words the reply
    from the record's id and what the form holds, without reading the record back."""

    batch: Batch
    # The record the batch inserts (or finds, saved before: its token), or the id of the one
    # it changes (a transition, a task marked done), remembered for a second 保存 press.
    record: Ref | int | None
    saved: Callable[[int | None], Awaitable[Saved]]
    # What the user is told, the form left open, when a `needed` statement changed nothing
    # (e.g. the record moved on meanwhile): nothing was written (bot.storage.batch.Unchanged).
    # Or a function that reads why (only then: the usual save reads nothing before its
    # write) and words it, or gives the writes anew from what it read (`Again`).
    refused: Invalid | Callable[[], Awaitable[Invalid | Again]] | None = None


@dataclass(frozen=True)
class Again:
    """A refused save's writes made anew from the record as it is now (e.g. edited by
    someone else since the form opened: the audit names what this edit changed from that),
    run once more in its place; refused again, the user is told `then`."""

    writing: Writing
    then: Invalid


# Like SaveFn; None where this save is not declared as writes (e.g. editing a saved record):
# the form's `save` then runs.
WriteFn = Callable[[Ctx, dict[str, Any], str, dict[str, Any]], Awaitable[Writing | None]]
# (ctx, values, meta) -> what a 保存 tap reads with the step's own read (FormSpec.save_reads)
SaveReadsFn = Callable[[Ctx, dict[str, Any], dict[str, Any]], list[Read]]
QuickFn = Callable[[Ctx], Any]
# Quick answers the field kinds carry (a time field's 现在): a form need not declare them.
KIND_QUICK: dict[str, QuickFn] = {NOW: now_value}
ActionFn = Callable[["FormEngine", Ctx, Draft, str], Awaitable[Outcome]]
# (ctx, new draft) -> a line (and buttons) shown above the first question, or None; may add
# values to the draft (e.g. photos sent just before the form was opened).
OpenFn = Callable[[Ctx, Draft], Awaitable[Reply | None]]
# (ctx, form token) -> the summary's button rows
SummaryButtonsFn = Callable[[Ctx, str], list[list[Button]]]


@dataclass(frozen=True)
class FormSpec:
    name: str
    title: str  # locale key
    fields: tuple[Field, ...]
    save: SaveFn | None  # None: every save is `write`'s
    quick: dict[str, QuickFn]  # quick-answer action -> value (e.g. "now")
    # Form-specific buttons (e.g. open the existing record behind a duplicate 户号).
    actions: dict[str, ActionFn] = field(default_factory=dict)
    on_open: OpenFn | None = None  # not when a saved record is opened to edit
    # The summary's buttons when a form words them its own way (确认 / 改时间 / 取消); they
    # answer with the engine's actions (save, editf, cancel ...). None: 保存 / 修改 / 上一步 /
    # 取消.
    summary_buttons: SummaryButtonsFn | None = None
    # Optional fields never asked one by one: offered as ➕ on the summary (no extra tap in
    # the common case) and shown on it only once filled.
    extras: tuple[str, ...] = ()
    write: WriteFn | None = None  # the save as writes, where it can be (see Writing)
    # What its write would learn only from a refusal (whose the 户号 is; the record an edit
    # opened on as it is now), declared from the summary's answers: read with the 保存 tap's
    # own read (Assistant._declared_reads, a guess from the form as this process last stored
    # it) and served once to `write`'s reads of the same SQL (Backend.served), so that a
    # change made meanwhile is told, or written over, without a round trip after the refused
    # write (issue #12: a step makes at most 2).
    save_reads: SaveReadsFn | None = None

    def get_field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def active(self, values: Mapping[str, Any]) -> tuple[Field, ...]:
        """The steps this form has, given the answers so far (see `Field.when`)."""
        return tuple(f for f in self.fields if f.applies(values))

    def field_of_kind(self, kind: Kind) -> Field | None:
        """The form's field taking photos (or a location) whatever step is asked, if any."""
        return next((f for f in self.fields if f.kind is kind), None)


@cache
def _words(kind: str) -> frozenset[str]:
    """Typed control words (上一步, skip ...) in every language, from locales/words.*."""
    words: set[str] = set()
    for loc in ("zh_CN", "en"):
        words |= {w.strip().lower() for w in catalog(loc).get(f"words.{kind}", "").split("|")}
    return frozenset(w for w in words if w)


def is_word(text: str, kind: str) -> bool:
    return normalize_input(text).lower() in _words(kind)


def _state(draft: Draft) -> FormState:
    return draft.state


def _view(draft: Draft) -> FormView:
    """The answers so far, the meta and the token, as parsers and displays see them."""
    st = _state(draft)
    return FormView(dict(st.values), dict(st.meta), draft.token)


def did_you_mean(text: str, close: list[Choice], token: str) -> Invalid:
    """'你是不是要找' with each close choice as a button that answers the step in one tap."""
    buttons = [Button(c.label, callback(token, "pick", c.value)) for c in close]
    return Invalid("form.did_you_mean", buttons=[buttons], text=text,
                   options="、".join(c.label for c in close))


class FormEngine:
    def __init__(self, forms: dict[str, FormSpec]) -> None:
        self.forms = forms
        # user id -> (form token, its save_reads) for a form stored at its summary
        self._save_reads: dict[int, tuple[str, list[Read]]] = {}

    def save_reads(self, user_id: int, token: str) -> list[Read]:
        """What a 保存 tap on form `token` reads with the step's read (FormSpec.save_reads),
        as of the form's last store in this process; none for another form."""
        held = self._save_reads.get(user_id)
        return list(held[1]) if held is not None and held[0] == token else []

    # --- lifecycle -------------------------------------------------------------------
    async def start(self, ctx: Ctx, form: str, values: dict[str, Any] | None = None,
                    notices: dict[str, str] | None = None, meta: dict[str, Any] | None = None,
                    heading: str | None = None, at_summary: bool = False,
                    offer: Sequence[str] = ()) -> Outcome:
        """Open a form; `at_summary` (editing a saved record) opens it at the summary.
        `offer`: optional fields not to ask one by one but to offer on the summary."""
        spec = self.forms[form]
        draft = Draft(ctx.user.id, form, secrets.token_hex(4),
                      FormState(values=dict(values or {}), notices=dict(notices or {}),
                                meta=dict(meta or {})), ctx.now, ctx.now)
        if at_summary:
            st = _state(draft)
            st.history = [f.name for f in spec.fields]
            st.skipped = [f.name for f in spec.fields if not st.values.get(f.name)]
        if offer:
            st = _state(draft)
            st.offered = [f.name for f in spec.fields if f.name in offer and not f.required]
            st.skipped += [n for n in st.offered if n not in st.skipped]
        notes = [] if at_summary else await self._autofill(ctx, spec, draft)
        opened = await spec.on_open(ctx, draft) if spec.on_open and not at_summary else None
        self._advance(spec, draft)
        prefix = heading
        if values and heading is None:  # say what was understood: a misreading shows at once
            view = FormView(dict(values), dict(meta or {}), draft.token)
            shown = [f"{ctx.t(f.label)} {await self._show(ctx, f, values[f.name], view)}"
                     for f in spec.fields if values.get(f.name) not in EMPTY]
            prefix = ctx.t("form.prefilled", title=ctx.t(spec.title), values=" · ".join(shown))
        opened_text = opened.text if opened is not None else None
        prefix = "\n".join(p for p in (prefix, *notes, opened_text) if p) or None
        reply = await self.render(ctx, draft, prefix)  # consumes the notices it shows ...
        if opened is not None and opened.buttons:
            reply.buttons[:0] = opened.buttons
            self.offer(draft, opened.buttons)  # (a 你是不是要找 name, typed, is its button)
        await self._store(ctx, draft)  # ... so they are stored as shown, never repeated
        return Outcome([reply])

    async def _store(self, ctx: Ctx, draft: Draft) -> None:
        draft.updated_at = ctx.now
        spec = self.forms.get(draft.form)
        st = _state(draft)
        if spec is not None and spec.save_reads is not None and st.step == SUMMARY:
            self._save_reads[draft.user_id] = (draft.token,
                                               spec.save_reads(ctx, st.values, st.meta))
        else:
            self._save_reads.pop(draft.user_id, None)
        await ctx.services.conversations.put(draft)

    async def with_reminder(self, ctx: Ctx, draft: Draft | None, out: Outcome) -> Outcome:
        """Append the open form's question after a side answer, so the form is not lost."""
        if draft is not None:
            out.replies += (await self.reprompt(ctx, draft, ctx.t("help.in_form"))).replies
        return out

    async def touch(self, ctx: Ctx, draft: Draft) -> None:
        """Store the draft as used now (a parked form taken up again)."""
        await self._store(ctx, draft)

    def is_expired(self, ctx: Ctx, draft: Draft) -> bool:
        """Idle past the form timeout: the form is parked, not lost."""
        return ctx.now - draft.updated_at > ctx.services.form_timeout

    def is_gone(self, ctx: Ctx, draft: Draft) -> bool:
        """Parked past the park window as well: the form is dropped for good."""
        services = ctx.services
        return ctx.now - draft.updated_at > services.form_timeout + services.form_park_window

    async def already_saved(self, ctx: Ctx, token: str) -> Outcome | None:
        """保存 pressed again on a form saved earlier (its confirmation may have been lost on
        the network): say what it saved, not that the button is stale."""
        memory = timedelta(hours=ctx.services.settings.saved_form_memory_hours)
        done = await ctx.services.conversations.finished(ctx.user.id, token, ctx.now - memory)
        if done is None or done.form not in self.forms:
            return None
        form = ctx.t(self.forms[done.form].title)
        if done.record_id is None:
            return Outcome(toast=ctx.t("form.saved_toast")).add(
                ctx.t("form.already_saved_noid", form=form))
        return Outcome(toast=ctx.t("form.already_saved", id=done.record_id)).add(
            ctx.t("form.already_saved_long", form=form, id=done.record_id))

    def step_label(self, ctx: Ctx, draft: Draft) -> str | None:
        """The label of the field being asked, or None at the summary / edit menu."""
        step = _state(draft).step
        if step in (SUMMARY, EDIT_MENU):
            return None
        return ctx.t(self.forms[draft.form].get_field(step).label)

    def at_summary(self, draft: Draft) -> bool:
        return bool(_state(draft).step == SUMMARY)

    async def filled(self, ctx: Ctx, draft: Draft, width: int = 20) -> str:
        """Every answer so far on one line ('台区 3号台区 · 时间 …'), long ones shortened."""
        spec = self.forms[draft.form]
        values = _state(draft).values
        view = _view(draft)
        parts = []
        for f in spec.active(values):
            if values.get(f.name) not in (None, [], ""):
                shown = await self._show(ctx, f, values[f.name], view)
                shown = shown if len(shown) <= width else shown[:width - 1] + "…"
                parts.append(f"{ctx.t(f.label)} {shown}")
        return " · ".join(parts) or ctx.t("form.empty")

    async def describe(self, ctx: Ctx, draft: Draft) -> str:
        """One line naming the form and what it holds so far, for expiry and conflict notes."""
        spec = self.forms[draft.form]
        parts = []
        for f in [f for f in spec.active(_state(draft).values) if f.name not in spec.extras][:3]:
            value = _state(draft).values.get(f.name)
            if value not in (None, [], ""):
                parts.append(await self._show(ctx, f, value, _view(draft)))
        detail = "，".join(parts) if ctx.locale == "zh_CN" else ", ".join(parts)
        return ctx.t(spec.title) + (f"（{detail}）" if detail else "")

    # --- filling what needs no asking ---------------------------------------------------
    async def _autofill(self, ctx: Ctx, spec: FormSpec, draft: Draft) -> list[str]:
        """At the start: a choice with one option answers itself, and answers given in the
        opening sentence fill what they settle. Returns the lines saying what was filled."""
        st = _state(draft)
        notes: list[str] = []
        for f in spec.fields:
            value = st.values.get(f.name)
            if value in EMPTY and f.fill_sole and f.name not in st.notices:
                note = await self._fill_sole(ctx, f, draft)  # (a notice: the user said another)
            elif value not in EMPTY and f.fills is not None:
                note = await self._fill_from(ctx, draft, f, value)
            else:
                note = None
            if note:
                notes.append(note)
        return notes

    async def _fill_sole(self, ctx: Ctx, f: Field, draft: Draft) -> str | None:
        assert f.choices is not None
        choices = await f.choices(ctx)
        if len(choices) != 1:
            return None
        only = choices[0]
        self._fill(draft, {f.name: [only.value] if f.kind is Kind.MULTI else only.value})
        return ctx.t("form.sole_filled", label=ctx.t(f.label), value=only.label)

    async def _fill_from(self, ctx: Ctx, draft: Draft, f: Field, value: Any) -> str | None:
        """What the answer `value` to `f` settles for other fields; a line saying so."""
        if f.fills is None:
            return None
        filled = await f.fills(value, ctx, _view(draft))
        self._fill(draft, dict(filled.values))
        return filled.note

    @staticmethod
    def _fill(draft: Draft, values: dict[str, Any]) -> None:
        """Fill fields still empty or filled by the form before; never overwrite the user."""
        st = _state(draft)
        auto: list[str] = st.meta.setdefault(AUTOFILLED, [])
        for name, value in values.items():
            if st.values.get(name) not in EMPTY and name not in auto:
                continue
            st.values[name] = value
            if name in auto:
                auto.remove(name)
            if value not in EMPTY:
                auto.append(name)
                if name in st.skipped:
                    st.skipped.remove(name)

    # --- rendering -------------------------------------------------------------------
    async def render(self, ctx: Ctx, draft: Draft, prefix: str | None = None) -> Reply:
        spec = self.forms[draft.form]
        st = _state(draft)
        tok = draft.token
        lines = [prefix] if prefix else []
        step = st.step
        st.meta.pop(OFFERED, None)  # what an earlier reply offered is no longer on screen
        if step == SUMMARY:
            lines.append(await self.summary(ctx, draft))
            return Reply("\n".join(lines), self._controls(ctx, draft))
        if step == EDIT_MENU:
            lines.append(ctx.t("form.edit_which"))
            return Reply("\n".join(lines), self._controls(ctx, draft))
        f = spec.get_field(step)
        notice = st.notices.pop(f.name, None)
        if notice:
            lines.append(notice)
        lines.append(ctx.t(f.prompt))
        value = st.values.get(f.name)
        if value not in (None, [], "") and f.kind not in (Kind.MULTI, Kind.PHOTOS):
            lines.append(ctx.t("form.current_value",
                               value=await self._show(ctx, f, value, _view(draft))))
        if f.hint and (st.errors == 0 or st.errors >= RETRY_HINT_AFTER):
            lines.append(ctx.t(f.hint))
        rows: list[list[Button]] = []
        if f.kind in (Kind.CHOICE, Kind.MULTI) and f.choices:
            choices = await f.choices(ctx)
            page = ctx.services.settings.form_choice_page
            offset = self._choice_offset(draft, f, len(choices), page)
            picked = set(value or []) if f.kind is Kind.MULTI else set()
            row: list[Button] = []
            for c in choices[offset:offset + page]:
                if f.kind is Kind.MULTI:
                    mark = "☑ " if c.value in picked else "☐ "
                    row.append(Button(mark + c.label, callback(tok, "tog", c.value)))
                else:
                    row.append(Button(c.label, callback(tok, "pick", c.value)))
                if len(row) == 3:
                    rows.append(row)
                    row = []
            if row:
                rows.append(row)
            if nav_row := pager(ctx.t, "chpage", offset, page, len(choices), token=tok):
                rows.append(nav_row)  # a long list (a lead's every 台区): typed names match all
                self.offer(draft, [nav_row])  # 「下一页」 typed turns the page too
        if f.kind is Kind.PHOTOS and value:
            lines.append(ctx.t("form.photos_so_far", count=len(value)))
        return Reply("\n".join(lines), rows + self._controls(ctx, draft))

    def _controls(self, ctx: Ctx, draft: Draft) -> list[list[Button]]:
        """The step's buttons other than its choices: 完成, the quick answers, 上一步 / 保持不变
        / 清空 / 跳过 / 取消; the summary's and the edit menu's buttons."""
        spec = self.forms[draft.form]
        st = _state(draft)
        tok = draft.token
        if st.step == SUMMARY:
            offered, extras = self._offer_buttons(ctx, spec, draft)
            if spec.summary_buttons is not None:
                return offered + extras + spec.summary_buttons(ctx, tok)
            return [*offered, [Button(ctx.t("btn.save"), callback(tok, "save")),
                               Button(ctx.t("btn.edit"), callback(tok, "edit"))],
                    *extras,  # under 保存: the common case taps on as before
                    [Button(ctx.t("btn.back"), callback(tok, "back")),
                     Button(ctx.t("btn.cancel"), callback(tok, "cancel"))]]
        if st.step == EDIT_MENU:
            rows = [[Button(ctx.t(f.label), callback(tok, "editf", f.name))]
                    for f in spec.active(st.values)]
            pairs = [rows[i][0:1] + (rows[i + 1] if i + 1 < len(rows) else [])
                     for i in range(0, len(rows), 2)]
            pairs.append([Button(ctx.t("btn.to_summary"), callback(tok, "summary"))])
            return pairs
        f = spec.get_field(st.step)
        value = st.values.get(f.name)
        rows: list[list[Button]] = []
        if f.kind is Kind.MULTI and f.choices:
            rows.append([Button(ctx.t("btn.done"), callback(tok, "done"))])
        for action in f.quick:
            rows.append([Button(ctx.t(f"btn.{action}"), callback(tok, "quick", action))])
        if f.kind is Kind.PHOTOS and value:
            rows.append([Button(ctx.t("btn.done"), callback(tok, "done"))])
        nav: list[Button] = []
        if st.history or st.editing:
            nav.append(Button(ctx.t("btn.back"), callback(tok, "back")))
        if value not in (None, [], "") and f.kind not in (Kind.MULTI, Kind.PHOTOS):
            nav.append(Button(ctx.t("btn.keep"), callback(tok, "keep")))
            if not f.required:  # an optional value can be taken out again
                nav.append(Button(ctx.t("btn.clear"), callback(tok, "skip")))
        elif not f.required and not value:
            nav.append(Button(ctx.t("btn.skip"), callback(tok, "skip")))
        nav.append(Button(ctx.t("btn.cancel"), callback(tok, "cancel")))
        rows.append(nav)
        return rows

    def _typed_control(self, ctx: Ctx, draft: Draft, text: str) -> tuple[str, str] | None:
        """The action and argument of the button among the step's controls whose label
        `text` is exactly (its emoji optional: 「保持不变」, 「⏭ 跳过」, 「➕ 备注」), if any."""
        if len(text) > MAX_TYPED_CHOICE:
            return None
        own = [b for row in self._controls(ctx, draft) for b in row
               if (parsed := parse_callback(b.data)) and parsed[0] == draft.token]
        b = by_label(text, own)
        parsed = parse_callback(b.data) if b else None
        return (parsed[1], parsed[2]) if parsed else None

    @staticmethod
    def _choice_offset(draft: Draft, f: Field, total: int, page: int) -> int:
        """The first choice shown on `f`'s step: the page turned to, kept while on it."""
        turned = _state(draft).meta.get(CHOICE_PAGE) or {}
        offset = int(turned.get("offset", 0)) if turned.get("step") == f.name else 0
        return offset if 0 <= offset < total else 0

    def _offer_buttons(self, ctx: Ctx, spec: FormSpec, draft: Draft
                       ) -> tuple[list[list[Button]], list[list[Button]]]:
        """'➕ 问题 / 照片 / 位置' on the summary, for the offered fields still empty; and the
        form's extras still empty, two a row (only steps that apply)."""
        st = _state(draft)

        def adds(names: list[str]) -> list[Button]:
            return [Button(ctx.t("btn.add_field", field=ctx.t(spec.get_field(name).label)),
                           callback(draft.token, "editf", name))
                    for name in names if st.values.get(name) in EMPTY
                    and spec.get_field(name).applies(st.values)]

        row = adds([n for n in st.offered if n not in spec.extras])
        extra = adds(list(spec.extras))
        return [row] if row else [], [extra[i:i + 2] for i in range(0, len(extra), 2)]

    async def _show(self, ctx: Ctx, f: Field, value: Any, form: FormView) -> str:
        if value in (None, [], ""):
            return ctx.t("form.empty")
        if f.show:
            return await f.show(value, ctx, form)
        return str(value)

    async def summary(self, ctx: Ctx, draft: Draft) -> str:
        spec = self.forms[draft.form]
        values = _state(draft).values
        view = _view(draft)
        lines = [ctx.t("form.summary_title", title=ctx.t(spec.title))]
        sep = "：" if ctx.locale == "zh_CN" else ": "
        for f in spec.active(values):
            if f.name in spec.extras and values.get(f.name) in EMPTY:
                continue  # its ➕ button says it can be added
            shown = await self._show(ctx, f, values.get(f.name), view)
            lines.append(f"{ctx.t(f.label)}{sep}{shown}")
        return "\n".join(lines)

    async def _rendered(self, ctx: Ctx, draft: Draft) -> Reply:
        """The step shown anew (in place), stored as shown (its page's ◀️ ▶️ offered)."""
        reply = await self.render(ctx, draft)
        await self._store(ctx, draft)
        return reply

    async def reprompt(self, ctx: Ctx, draft: Draft, prefix: str | None = None,
                       offered: list[list[Button]] | None = None) -> Outcome:
        """The step asked again; `offered`: buttons shown on top of its own (a refusal's)."""
        reply = await self.render(ctx, draft, prefix)
        if offered:
            self._offer_on_top(draft, reply, offered)
        await self._store(ctx, draft)  # notices shown are consumed
        return Outcome([reply])

    def _offer_on_top(self, draft: Draft, reply: Reply, offered: list[list[Button]]) -> None:
        """`offered` above the reply's buttons (and not twice), kept for a typed label."""
        shown = {b.data for row in offered for b in row}
        rest = [[b for b in row if b.data not in shown] for row in reply.buttons]
        reply.buttons[:] = [*offered, *(row for row in rest if row)]
        self.offer(draft, offered)

    @staticmethod
    def offer(draft: Draft, rows: list[list[Button]], alone: bool = False) -> None:
        """Buttons shown with the form besides its step's keyboard (OFFERED): their label
        typed as the next message presses them, while the form is at this step. `alone`:
        they are all that is on screen (a question about the form), not added to a reply."""
        st = _state(draft)
        kept = None if alone else st.meta.get(OFFERED)
        earlier = kept["buttons"] if kept and kept.get("step") == st.step else []
        st.meta[OFFERED] = {"step": st.step,
                            "buttons": [*earlier, *([b.label, b.data] for row in rows
                                                    for b in row)]}

    @staticmethod
    def offered_button(draft: Draft, text: str) -> str | None:
        """The data of the button the form offered besides its keyboard (OFFERED) whose
        label `text` is, as people type it; None for anything else."""
        st = _state(draft)
        kept = st.meta.get(OFFERED)
        if not kept or kept.get("step") != st.step or len(text) > MAX_TYPED_CHOICE:
            return None
        b = by_label(text, (Button(label, data) for label, data in kept["buttons"]))
        return b.data if b else None

    # --- moving between steps ----------------------------------------------------------
    def _advance(self, spec: FormSpec, draft: Draft) -> None:
        """Go to the first field still missing, or to the summary. An edit goes back to the
        summary, unless it brought in a step not answered yet (`Field.when`)."""
        st = _state(draft)
        st.errors = 0
        self._drop_inapplicable(spec, draft)
        for f in spec.active(st.values):
            # While editing, only a step the edit brought in is asked; the rest are on the
            # summary already. The extras are never asked: they are ➕ on the summary.
            brought_in = f.when is not None and f.name not in st.history
            if st.values.get(f.name) in EMPTY and f.name not in st.skipped and (
                    f.name not in spec.extras) and (not st.editing or brought_in):
                st.step = f.name
                return
        st.editing = False
        st.step = SUMMARY

    @staticmethod
    def _drop_inapplicable(spec: FormSpec, draft: Draft) -> None:
        """A step that no longer applies keeps no answer: it is neither shown nor saved."""
        st = _state(draft)
        for f in spec.fields:
            if f.when is not None and not f.applies(st.values):
                if st.values.get(f.name) not in EMPTY:
                    st.values[f.name] = f.empty
                st.history = [n for n in st.history if n != f.name]
                st.skipped = [n for n in st.skipped if n != f.name]

    def _answered(self, spec: FormSpec, draft: Draft, name: str, value: Any) -> None:
        st = _state(draft)
        st.values[name] = value
        if name in st.meta.get(AUTOFILLED, []):  # the user's own answer now
            st.meta[AUTOFILLED].remove(name)
        if name in st.skipped and value not in (None, [], ""):
            st.skipped.remove(name)
        if not st.editing and name not in st.history:
            st.history.append(name)
        self._advance(spec, draft)

    def _back(self, draft: Draft) -> bool:
        st = _state(draft)
        if st.editing:
            st.editing = False
            st.step = SUMMARY
            return True
        if st.step in (SUMMARY, EDIT_MENU):
            if not st.history:
                return False
            st.step = st.history[-1]
            return True
        if st.step in st.history:
            idx = st.history.index(st.step)
            if idx == 0:
                return False
            st.step = st.history[idx - 1]
            return True
        if not st.history:
            return False
        st.step = st.history[-1]
        return True

    # --- input -----------------------------------------------------------------------
    async def on_text(self, ctx: Ctx, draft: Draft, text: str) -> Outcome:
        spec = self.forms[draft.form]
        st = _state(draft)
        step = st.step
        clean = normalize_input(text)
        if st.meta.pop(CANCEL_ASKED, False):
            if is_word(clean, "cancel") or is_word(clean, "save") \
                    or clean == normalize_input(ctx.t("btn.cancel_yes")):
                return await self.cancel(ctx, draft)
            if is_word(clean, "resume") or clean == normalize_input(ctx.t("btn.cancel_no")):
                return await self.reprompt(ctx, draft)
        # The label of a button the step shows, typed, is that button, never an answer: who
        # cannot see the keyboard (a phone's keyboard over it, a chat that numbers it in
        # text) types what it says, and expects 「保持不变」 to keep the answer, not to become
        # it. Choices are not among them: the step's own reading takes a typed choice.
        if (typed := self._typed_control(ctx, draft, clean)) is not None:
            return await self.on_action(ctx, draft, *typed)
        if is_word(clean, "cancel"):  # typed 取消 / 算了 asks first, like the ✖️ button
            return await self.confirm_cancel(ctx, draft)
        if is_word(clean, "back"):
            return await self.on_action(ctx, draft, "back", "")
        if step == SUMMARY:
            if is_word(clean, "save"):
                return await self.on_action(ctx, draft, "save", "")
            if is_word(clean, "edit"):
                return await self.on_action(ctx, draft, "edit", "")
            return await self.reprompt(ctx, draft, ctx.t("form.summary_use_buttons"))
        if step == EDIT_MENU:
            for f in spec.active(st.values):
                if match_choice(clean, [Choice(f.name, ctx.t(f.label))]).exact:
                    return await self.on_action(ctx, draft, "editf", f.name)
            return await self.reprompt(ctx, draft, ctx.t("form.edit_use_buttons"))
        f = spec.get_field(step)
        value = st.values.get(f.name)
        if is_word(clean, "clear") and not f.required:
            return await self.on_action(ctx, draft, "skip", "")
        # '完成' / '没有了' on an optional free-text step means "nothing to add", not the answer.
        if is_word(clean, "skip") or (f.kind is Kind.TEXT and not f.required
                                      and is_word(clean, "done")):
            if value not in (None, [], "") and f.kind not in (Kind.MULTI, Kind.PHOTOS):
                return await self.on_action(ctx, draft, "keep", "")
            return await self.on_action(ctx, draft, "skip", "")
        if f.kind in (Kind.MULTI, Kind.PHOTOS) and (is_word(clean, "done")
                                                   or is_word(clean, "save")):
            return await self.on_action(ctx, draft, "done", "")
        for action in f.quick:
            if is_word(clean, action):
                return await self.on_action(ctx, draft, "quick", action)
        if f.kind is Kind.PHOTOS:
            return await self._invalid(ctx, draft, Invalid("form.expect_photo"))
        if f.kind is Kind.LOCATION:
            return await self._invalid(ctx, draft, Invalid("form.expect_location"))
        try:
            if f.kind is Kind.CHOICE:
                parsed: Any = await self._parse_choice(ctx, f, clean, draft.token)
            elif f.parse is not None:
                # stored as written, not folded
                parsed = await f.parse(text.strip(), ctx, _view(draft))
            else:
                parsed = text.strip()
        except Invalid as exc:
            return await self._invalid(ctx, draft, exc)
        return await self._answer(ctx, spec, draft, f, parsed)

    async def _answer(self, ctx: Ctx, spec: FormSpec, draft: Draft, f: Field,
                      value: Any) -> Outcome:
        """Take a typed or tapped answer, fill what it settles, and ask the next step."""
        note = await self._fill_from(ctx, draft, f, value)
        self._answered(spec, draft, f.name, value)
        return await self.reprompt(ctx, draft, note)

    async def _parse_choice(self, ctx: Ctx, f: Field, text: str, token: str) -> str:
        assert f.choices is not None
        choices = await f.choices(ctx)
        found = match_choice(text, choices)
        if found.unambiguous:
            return found.unambiguous.value
        if found.suggestions:
            raise did_you_mean(text, found.suggestions, token)
        raise Invalid(f"{f.prompt}.unknown", text=text,
                      options="、".join(c.label for c in choices))

    async def _invalid(self, ctx: Ctx, draft: Draft, exc: Invalid) -> Outcome:
        _state(draft).errors += 1
        return await self.reprompt(ctx, draft, "⚠️ " + ctx.t(exc.key, **exc.kwargs),
                                   offered=exc.buttons)

    async def on_photo(self, ctx: Ctx, draft: Draft, ref: str,
                       caption: str | None = None) -> Outcome:
        """A photo is kept whatever step it arrives at, in the form's photo field; its caption
        answers a free-text step, or else is kept as the photo's note. A form without a photo
        field says so: nothing is kept out of sight."""
        spec = self.forms[draft.form]
        target = spec.field_of_kind(Kind.PHOTOS)
        if target is None:
            return await self.reprompt(ctx, draft, ctx.t("form.photo_not_taken",
                                                         form=ctx.t(spec.title)))
        st = _state(draft)
        photos = [*st.values.get(target.name, []), ref]
        st.values[target.name] = photos
        if target.name in st.skipped:
            st.skipped.remove(target.name)
        step = st.step
        if caption and caption.strip():
            field_ = spec.get_field(step) if step not in (SUMMARY, EDIT_MENU) else None
            if field_ is not None and field_.kind is Kind.TEXT:
                out = await self.on_text(ctx, draft, caption)
                out.replies[0].text = (ctx.t("form.photo_kept", count=len(photos)) + "\n"
                                       + out.replies[0].text)
                return out
            # A PHOTOS field declared before `notes` existed keeps them where it always did.
            notes = target.notes or PHOTO_NOTES
            st.values.setdefault(notes, {})[ref] = caption.strip()
        if st.step == target.name:
            await self._store(ctx, draft)
            tok = draft.token
            return Outcome([Reply(ctx.t("form.photo_received", count=len(photos)),
                                  [[Button(ctx.t("btn.done"), callback(tok, "done")),
                                    Button(ctx.t("btn.cancel"), callback(tok, "cancel"))]])])
        return await self.reprompt(ctx, draft, ctx.t("form.photo_kept", count=len(photos)))

    async def on_location(self, ctx: Ctx, draft: Draft, point: tuple[float, float]) -> Outcome:
        spec = self.forms[draft.form]
        st = _state(draft)
        target = spec.field_of_kind(Kind.LOCATION)
        if target is None:
            return await self.reprompt(ctx, draft, ctx.t("form.location_not_taken",
                                                         form=ctx.t(spec.title)))
        # Every form with a location field takes one at any step: one that is not on Earth
        # (a forged update, NaN) would otherwise be saved and shown as a check-in.
        if not validators.coordinates(*point):
            return await self.reprompt(ctx, draft, ctx.t("form.location_invalid"))
        if st.step == target.name:
            self._answered(spec, draft, target.name, list(point))
            return await self.reprompt(ctx, draft)
        st.values[target.name] = list(point)
        return await self.reprompt(ctx, draft, ctx.t("form.location_kept"))

    async def on_action(self, ctx: Ctx, draft: Draft, action: str, arg: str) -> Outcome:
        """A button press (or its typed equivalent) that belongs to this draft."""
        spec = self.forms[draft.form]
        st = _state(draft)
        step = st.step
        field_ = spec.get_field(step) if step not in (SUMMARY, EDIT_MENU) else None
        st.meta.pop(CANCEL_ASKED, None)  # any button answers (or passes over) the question
        if action in spec.actions:
            return await spec.actions[action](self, ctx, draft, arg)
        if action == "cancel":
            return await self.confirm_cancel(ctx, draft)
        if action == "cancel_yes":
            return await self.cancel(ctx, draft)
        if action in ("cancel_no", "summary", "resume"):
            if action == "summary":
                st.step = SUMMARY
                st.editing = False
            return await self.reprompt(ctx, draft)
        if action == "back":
            if not self._back(draft):
                return await self.reprompt(ctx, draft, ctx.t("form.first_step"))
            st.errors = 0
            return await self.reprompt(ctx, draft)
        if action == "save" and step == SUMMARY:
            return await self._save(ctx, draft)
        if action == "edit" and step == SUMMARY:
            st.step = EDIT_MENU
            return await self.reprompt(ctx, draft)
        if action == "editf" and step in (SUMMARY, EDIT_MENU):
            try:
                picked = spec.get_field(arg)
            except KeyError:
                return await self.reprompt(ctx, draft)
            if not picked.applies(st.values):  # an old edit menu's button for a step now gone
                return await self.reprompt(ctx, draft, ctx.t("form.button_not_now"))
            st.step = arg
            st.editing = True
            st.errors = 0
            return await self.reprompt(ctx, draft)
        if field_ is None:
            return await self.reprompt(ctx, draft, ctx.t("form.button_not_now"))
        if action == "keep" and st.values.get(field_.name) not in (None, [], ""):
            self._answered(spec, draft, field_.name, st.values[field_.name])
        elif action == "skip" and not field_.required:
            st.values[field_.name] = [] if field_.kind in (Kind.MULTI, Kind.PHOTOS) else None
            if field_.name not in st.skipped:
                st.skipped.append(field_.name)
            if not st.editing and field_.name not in st.history:
                st.history.append(field_.name)
            self._advance(spec, draft)
        elif action == "skip":
            return await self.reprompt(ctx, draft, ctx.t("form.required"))
        elif action == "pick" and field_.kind in (Kind.CHOICE, Kind.MULTI) and field_.choices:
            # On a MULTI step, only a '你是不是要找' button picks: that one choice is the answer.
            if arg not in {c.value for c in await field_.choices(ctx)}:
                return await self.reprompt(ctx, draft, ctx.t("form.button_not_now"))
            value = [arg] if field_.kind is Kind.MULTI else arg
            return await self._answer(ctx, spec, draft, field_, value)
        elif action == "chpage" and field_.choices and arg.isdigit():
            st.meta[CHOICE_PAGE] = {"step": field_.name, "offset": int(arg)}
            return Outcome(edit=await self._rendered(ctx, draft))
        elif action == "tog" and field_.kind is Kind.MULTI and field_.choices:
            if arg in {c.value for c in await field_.choices(ctx)}:
                picked = list(st.values.get(field_.name) or [])
                picked.remove(arg) if arg in picked else picked.append(arg)
                st.values[field_.name] = picked
            return Outcome(edit=await self._rendered(ctx, draft), toast=ctx.t("form.toggled"))
        elif action == "done" and field_.kind is Kind.MULTI:
            if not st.values.get(field_.name):
                if not field_.required:
                    return await self.on_action(ctx, draft, "skip", "")
                return await self.reprompt(ctx, draft, ctx.t("form.pick_at_least_one"))
            self._answered(spec, draft, field_.name, st.values[field_.name])
        elif action == "done" and field_.kind is Kind.PHOTOS:
            if st.values.get(field_.name):
                self._answered(spec, draft, field_.name, st.values[field_.name])
            else:
                return await self.on_action(ctx, draft, "skip", "")
        elif action == "quick" and arg in field_.quick and (
                quick := spec.quick.get(arg) or KIND_QUICK.get(arg)) is not None:
            self._answered(spec, draft, field_.name, quick(ctx))
        else:
            return await self.reprompt(ctx, draft, ctx.t("form.button_not_now"))
        return await self.reprompt(ctx, draft)

    async def confirm_cancel(self, ctx: Ctx, draft: Draft) -> Outcome:
        """A tapped cancel asks first: one slip of a wet thumb must not throw a form away."""
        tok = draft.token
        st = _state(draft)
        st.meta[CANCEL_ASKED] = True
        st.meta.pop(OFFERED, None)  # the question is on screen now, not what it covers
        await self._store(ctx, draft)
        return Outcome([Reply(ctx.t("form.cancel_confirm", form=await self.describe(ctx, draft)),
                              [[Button(ctx.t("btn.cancel_yes"), callback(tok, "cancel_yes")),
                                Button(ctx.t("btn.cancel_no"), callback(tok, "cancel_no"))]])])

    async def cancel(self, ctx: Ctx, draft: Draft) -> Outcome:
        await ctx.services.conversations.delete(ctx.user.id)
        out = Outcome([Reply(ctx.t("form.cancelled", form=ctx.t(self.forms[draft.form].title)),
                             [[Button(ctx.t("btn.menu_log"), callback(GLOBAL_TOKEN, "cmd", "log")),
                               Button(ctx.t("btn.menu_logs"),
                                      callback(GLOBAL_TOKEN, "cmd", "logs"))]])])
        out.replies += await self.take_up_set_aside(ctx, draft)
        return out

    def set_aside(self, new: Draft, old: Draft) -> None:
        """Keep `old` inside `new` until `new` is saved or cancelled."""
        new.state.meta[SET_ASIDE] = {"form": old.form, "token": old.token,
                                     "state": old.state.to_json(),
                                     "started_at": iso(old.started_at)}

    async def take_up_set_aside(self, ctx: Ctx, closed: Draft) -> list[Reply]:
        """The form set aside for `closed`, open again and asking where it stopped."""
        kept = closed.state.meta.get(SET_ASIDE)
        if not kept or kept.get("form") not in self.forms:
            return []
        draft = Draft(ctx.user.id, kept["form"], kept["token"], FormState.from_json(kept["state"]),
                      from_iso(kept["started_at"]), ctx.now)
        back = ctx.t("form.set_aside_back", form=await self.describe(ctx, draft))
        return (await self.reprompt(ctx, draft, back)).replies

    async def _save(self, ctx: Ctx, draft: Draft) -> Outcome:
        spec = self.forms[draft.form]
        st = _state(draft)
        conversations = ctx.services.conversations
        try:
            writing = (await spec.write(ctx, st.values, draft.token, st.meta)
                       if spec.write is not None else None)
            if writing is not None:  # the record and the form's close: one transaction
                played, writing = await self._write(ctx, draft, writing)
            elif spec.save is not None:
                saved = await spec.save(ctx, st.values, draft.token, st.meta)
            else:
                raise TypeError(f"form {spec.name}: its write declined and it has no save")
        except (Invalid, Declined) as exc:  # Declined: the batch's guard wrote nothing
            # (an Invalid's buttons too: 📂 打开已有档案 of a 户号 registered meanwhile)
            return await self.reprompt(ctx, draft, "⚠️ " + ctx.t(exc.key, **exc.kwargs),
                                       offered=getattr(exc, "buttons", None))
        except Exception:
            # Keep the draft: the user can press save again; nothing confirmed is lost.
            log.exception("saving form %s for user %s failed", draft.form, ctx.user.id)
            return await self.reprompt(ctx, draft, "⚠️ " + ctx.t("form.save_failed"))
        self._save_reads.pop(draft.user_id, None)
        if writing is not None:  # worded from what was written, not read back
            saved = await writing.saved(played.id_of(writing.record))
            return await self._saved(ctx, draft, saved)
        try:
            await conversations.finish(draft, saved.record_id, ctx.now)
        except Exception:
            # Saved already (e.g. an import took the lock just after): say so, or the user
            # types it all again. The form is closed like a step is written (held in memory
            # while the lock is taken); only the memory for a second 保存 press is lost.
            log.warning("form %s of user %s saved, but closing it failed", draft.form,
                        ctx.user.id, exc_info=True)
            await conversations.delete(ctx.user.id)
        return await self._saved(ctx, draft, saved)

    @staticmethod
    async def _write(ctx: Ctx, draft: Draft, writing: Writing) -> tuple[Played, Writing]:
        """`writing` with the form's close in one transaction; refused (Unchanged), the
        refusal it words, or its writes made anew (`Again`) run once more."""
        conversations = ctx.services.conversations
        try:
            return await conversations.finish(draft, None, ctx.now, writing.batch,
                                              writing.record), writing
        except Unchanged as exc:
            refused = writing.refused
            if refused is None or isinstance(exc, Declined):
                raise
            why = refused if isinstance(refused, Invalid) else await refused()
            if isinstance(why, Invalid):
                raise why from None
        again = why.writing
        try:
            return await conversations.finish(draft, None, ctx.now, again.batch,
                                              again.record), again
        except Unchanged:
            raise why.then from None

    async def _saved(self, ctx: Ctx, draft: Draft, saved: Saved) -> Outcome:
        return Outcome([Reply(saved.text, saved.buttons),
                        *await self.take_up_set_aside(ctx, draft)],
                       toast=ctx.t("form.saved_toast"))
