"""Something new asked while a form is open: continue it, set it aside for the new thing (it
comes back once the new one is saved or cancelled), or discard it. One form per person."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.events import Button, Outcome, Reply, callback
from bot.forms.engine import FormEngine
from bot.services import Ctx
from bot.storage.conversations import Draft

# Meta of an open form while the "new request?" question is on screen: the request typed.
HELD_REQUEST = "held_request"
QUOTE_WIDTH = 20  # characters of a held request quoted back in the question
SWITCH_ACTIONS = ("discard_new", "park_new")

# (ctx, target) -> the new thing done with no form open: a form name or opener target opened,
# or (ctx, text) a typed request read by the features.
OpenFn = Callable[[Ctx, str], Awaitable[Outcome]]
ReadFn = Callable[[Ctx, str], Awaitable[Outcome]]


class Switching:
    def __init__(self, engine: FormEngine, open_target: OpenFn, read_text: ReadFn) -> None:
        self.engine = engine
        self.open_target = open_target
        self.read_text = read_text

    async def ask(self, ctx: Ctx, draft: Draft, target: str = "",
                  held: str | None = None) -> Outcome:
        """The question. `target` is a form to open; `held` a typed request, kept in the form
        until answered (too long for button data)."""
        form = await self.engine.describe(ctx, draft)
        tok = draft.token
        drop = "btn.discard_new" if held is None else "btn.park_drop"
        buttons = [[Button(ctx.t("btn.resume"), callback(tok, "resume")),
                    Button(ctx.t("btn.park_new"), callback(tok, "park_new", target)),
                    Button(ctx.t(drop), callback(tok, "discard_new", target))]]
        if held is None:
            text = ctx.t("form.conflict", form=form)
        else:
            draft.state.meta[HELD_REQUEST] = held
            # kept with the form: 「先放一边」 typed answers the question as the button does
            self.engine.offer(draft, buttons, alone=True)
            await self.engine.touch(ctx, draft)
            quote = held if len(held) <= QUOTE_WIDTH else held[:QUOTE_WIDTH - 1] + "…"
            text = ctx.t("form.switch", form=form, text=quote)
        return Outcome().add(text, buttons)

    async def answer(self, ctx: Ctx, draft: Draft, action: str, target: str) -> Outcome:
        """The question answered: do the new thing, the open form set aside or discarded."""
        held = draft.state.meta.pop(HELD_REQUEST, None)
        if not target and held is None:  # an old question, answered already
            return await self.engine.reprompt(ctx, draft)
        if action == "discard_new":
            await ctx.services.conversations.delete(ctx.user.id)
            out = await self._new_request(ctx, target, held)
            out.replies.insert(0, Reply(ctx.t("form.discarded")))
            return out
        await self.engine.touch(ctx, draft)
        out = await self._new_request(ctx, target, held)
        new = await ctx.services.conversations.get(ctx.user.id)
        if new is None or new.token == draft.token:  # a list or a search: the form just waits
            return await self.engine.with_reminder(ctx, draft, out)
        self.engine.set_aside(new, draft)
        await ctx.services.conversations.put(new)
        out.replies.insert(0, Reply(ctx.t("form.set_aside", form=await self.engine.describe(
            ctx, draft))))
        return out

    async def _new_request(self, ctx: Ctx, target: str, held: str | None) -> Outcome:
        if target:
            return await self.open_target(ctx, target)
        assert held is not None
        return await self.read_text(ctx, held)
