"""A form left idle past the form timeout is parked, not thrown away.

The next message or button press offers 继续填写 / 放弃 (and 保存 when the form is complete)
with what was filled so far; that message is held in the draft and applied after the choice,
so an answer typed after the timeout is not lost. Only after the park window is the form
dropped (the core does that and says so once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.conversations.engine import FormEngine, is_word
from bot.conversations.fields import Kind
from bot.events import GLOBAL_TOKEN, Button, Incoming, Outcome, Reply, callback, parse_callback
from bot.services import Ctx
from bot.storage.conversations import Draft
from bot.timeparse import format_time

GO, SAVE, DROP = "park_go", "park_save", "park_drop"
# The form's own buttons that already are this choice (an old conflict or cancel question).
SAME_CHOICE = {GO: GO, SAVE: SAVE, DROP: DROP, "resume": GO, "cancel_no": GO,
               "cancel_yes": "cancel_yes"}
# The park question's buttons pressed once the form is open again: the engine's equivalents.
ACTIVE_EQUIVALENT = {GO: "resume", SAVE: "save", DROP: "cancel"}
HELD_FIELDS = ("text", "callback", "photo", "location", "other")
QUOTE_WIDTH = 30

# (ctx, incoming, draft or None) -> outcome: the core's normal routing, to apply what was held.
RouteFn = Callable[[Ctx, Incoming, Draft | None], Awaitable[Outcome]]


class Parking:
    def __init__(self, engine: FormEngine, route: RouteFn) -> None:
        self.engine = engine
        self.route = route

    async def handle(self, ctx: Ctx, ev: Incoming, draft: Draft, command: str | None) -> Outcome:
        """Anything that arrives for a parked draft: a choice, or a message to hold and ask."""
        choice = self._choice(ev, draft, command)
        if choice == "cancel_yes":  # the cancel question answered: nothing more to ask
            return await self.engine.cancel(ctx, draft)
        if choice == "cancel":  # /cancel or a typed 放弃 asks first, as on an open form
            draft.state.parked = None
            return await self.engine.confirm_cancel(ctx, draft)
        if choice is not None:
            held = (draft.state.parked or {}).get("held")
            draft.state.parked = None
            if choice == DROP:
                return await self._drop(ctx, ev, draft, held)
            await self.engine.touch(ctx, draft)  # taken up again: the idle clock restarts
            if choice == SAVE:
                return await self._save(ctx, ev, draft, held)
            if held is None:
                return await self.engine.reprompt(ctx, draft, ctx.t("form.park.resumed"))
            return await self.route(ctx, _incoming(ev, held), draft)
        held = {k: v for k in HELD_FIELDS if (v := getattr(ev, k)) is not None}
        draft.state.parked = {"held": held or None}
        # Stored with its old updated_at: holding a message does not un-park the form.
        await ctx.services.conversations.put(draft)
        out = await self._ask(ctx, draft)
        if ev.callback is not None:
            out.toast = ctx.t("form.park.toast")
        return out

    def _choice(self, ev: Incoming, draft: Draft, command: str | None) -> str | None:
        if ev.callback is not None:
            parsed = parse_callback(ev.callback)
            if parsed is not None and parsed[0] == draft.token:
                return SAME_CHOICE.get(parsed[1])
            return None
        text = (ev.text or "").strip()
        if not text or ev.photo is not None:
            return None
        if command == "cancel" or is_word(text, "cancel"):
            return "cancel"
        if is_word(text, "resume"):
            return GO
        asked = draft.state.parked is not None
        if asked and self.engine.at_summary(draft) and is_word(text, "save"):
            return SAVE  # asked already and the form is complete: 保存 means save
        return None

    async def _save(self, ctx: Ctx, ev: Incoming, draft: Draft,
                    held: dict[str, Any] | None) -> Outcome:
        if not self.engine.at_summary(draft):  # an old 保存 button: just take the form up
            return await self.engine.reprompt(ctx, draft)
        out = await self.engine.on_action(ctx, draft, "save", "")
        if held is not None and _is_request(held):  # e.g. /logs sent after the timeout
            rest = await self.route(ctx, _incoming(ev, held),
                                    await ctx.services.conversations.get(ctx.user.id))
            out.replies += rest.replies
        return out

    async def _drop(self, ctx: Ctx, ev: Incoming, draft: Draft,
                    held: dict[str, Any] | None) -> Outcome:
        out = await self.engine.cancel(ctx, draft)
        # A request or free text sent after the timeout is handled now, without the form.
        if held is not None and (_is_request(held) or set(held) == {"text"}):
            rest = await self.route(ctx, _incoming(ev, held), None)
            out.replies += rest.replies
        return out

    async def _ask(self, ctx: Ctx, draft: Draft) -> Outcome:
        services = ctx.services
        title = ctx.t(self.engine.forms[draft.form].title)
        until = draft.updated_at + services.form_timeout + services.form_park_window
        lines = [ctx.t("form.park.notice", form=title,
                       minutes=services.settings.form_timeout_minutes,
                       until=format_time(until.astimezone(ctx.tz), ctx.locale)),
                 ctx.t("form.park.filled", values=await self.engine.filled(ctx, draft))]
        label = self.engine.step_label(ctx, draft)
        lines.append(ctx.t("form.park.next", field=label) if label
                     else ctx.t("form.park.complete"))
        held_line = self._held_line(ctx, draft, draft.state.parked["held"], label, title)
        if held_line:
            lines.append(held_line)
        lines.append(ctx.t("form.park.question"))
        tok = draft.token
        row = [Button(ctx.t("btn.resume"), callback(tok, GO)),
               Button(ctx.t("btn.park_drop"), callback(tok, DROP))]
        if self.engine.at_summary(draft):
            row.insert(0, Button(ctx.t("btn.save"), callback(tok, SAVE)))
        return Outcome([Reply("\n".join(lines), [row])])

    def _held_line(self, ctx: Ctx, draft: Draft, held: dict[str, Any] | None,
                   label: str | None, title: str) -> str | None:
        """Say what becomes of the held message, so the user knows it was not lost."""
        if held is None:
            return None
        spec = self.engine.forms[draft.form]
        if "photo" in held:  # promise it only where the form keeps photos
            return ctx.t("form.park.held_photo" if spec.field_of_kind(Kind.PHOTOS)
                         else "form.photo_not_taken", form=title)
        if "location" in held:
            return ctx.t("form.park.held_location" if spec.field_of_kind(Kind.LOCATION)
                         else "form.location_not_taken", form=title)
        if "callback" in held:
            parsed = parse_callback(held["callback"])
            if parsed is None or parsed[0] not in (GLOBAL_TOKEN, draft.token):
                return None  # a button of some older form: it stays stale
            if parsed[0] == GLOBAL_TOKEN:
                return ctx.t("form.park.held_request_button")
            if parsed[1] == "save" and self.engine.at_summary(draft):
                return ctx.t("form.park.held_save")
            return ctx.t("form.park.held_button")
        if "text" not in held:
            return None
        text = held["text"].strip()
        quote = text if len(text) <= QUOTE_WIDTH else text[:QUOTE_WIDTH - 1] + "…"
        if _is_request(held):
            return ctx.t("form.park.held_request", text=quote)
        if label is None:
            if is_word(text, "save") and self.engine.at_summary(draft):
                return ctx.t("form.park.held_save")
            return ctx.t("form.park.held_text", text=quote)
        return ctx.t("form.park.held_answer", text=quote, field=label)


def _is_request(held: dict[str, Any]) -> bool:
    """A command or a menu button: something asked of the bot, not an answer to the form."""
    if "callback" in held:
        parsed = parse_callback(held["callback"])
        return parsed is not None and parsed[0] == GLOBAL_TOKEN
    return "photo" not in held and str(held.get("text", "")).strip().startswith("/")


def _incoming(ev: Incoming, held: dict[str, Any]) -> Incoming:
    """The held message again, as it arrived (JSON turned the location into a list)."""
    fields = dict(held)
    if fields.get("location") is not None:
        fields["location"] = tuple(fields["location"])
    return Incoming(ev.channel, ev.external_id, ev.display_name, language=ev.language, **fields)
