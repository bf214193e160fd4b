"""Greeting, help, language and the replies for what the bot did not understand."""

from __future__ import annotations

from collections.abc import Callable

from bot.events import GLOBAL_TOKEN, Button, Outcome, callback
from bot.i18n import catalog, normalize_locale, t
from bot.models import Role, User
from bot.services import Ctx

COMMANDS = ("log", "logs", "customer", "customers", "cancel", "help", "lang")


def menu_buttons(locale: str) -> list[list[Button]]:
    return [[Button(t(locale, "btn.menu_log"), callback(GLOBAL_TOKEN, "cmd", "log")),
             Button(t(locale, "btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))],
            [Button(t(locale, "btn.menu_help"), callback(GLOBAL_TOKEN, "cmd", "help"))]]


async def _who(ctx: Ctx, user: User) -> str:
    areas = await ctx.services.people.areas_for(user)
    names = "、".join(a.name for a in areas) or ctx.t("menu.no_areas")
    return ctx.t(f"menu.role.{user.role.value}", team=user.team_name, areas=names)


async def greeting(ctx: Ctx, welcome: bool = False) -> Outcome:
    key = "menu.welcome" if welcome else "menu.hello"
    text = "\n".join([ctx.t(key, name=ctx.user.name), await _who(ctx, ctx.user), "",
                      ctx.t("menu.can_do")])
    return Outcome().add(text, menu_buttons(ctx.locale))


async def help_text(ctx: Ctx) -> str:
    extra = ctx.t("help.lead") if ctx.user.role is not Role.MANAGER else ""
    return "\n".join(x for x in [ctx.t("help.body"), extra, await _who(ctx, ctx.user)] if x)


async def set_language(ctx: Ctx, arg: str) -> Outcome:
    locale = normalize_locale(arg)
    if locale is None:
        return Outcome().add(ctx.t("lang.usage"))
    await ctx.services.people.set_locale(ctx.user.id, locale)
    return Outcome(commands_changed=True).add(t(locale, "lang.set"), menu_buttons(locale))


def command_descriptions(locale: str) -> list[tuple[str, str]]:
    """The menu a platform shows next to the input box, in the user's language."""
    from bot.registry import REGISTRY

    names = list(COMMANDS) + [c for c in REGISTRY.commands if c not in COMMANDS]
    return [(c, t(locale, f"cmd.{c}")) for c in names if f"cmd.{c}" in catalog(locale)]


def pager(ctx_t: Callable[[str], str], action: str, offset: int, page: int,
          total: int) -> list[Button]:
    """◀️ / ▶️ buttons for a paged list (empty when it fits on one page)."""
    nav = []
    if offset > 0:
        nav.append(Button(ctx_t("btn.prev_page"), callback(GLOBAL_TOKEN, action,
                                                           max(0, offset - page))))
    if offset + page < total:
        nav.append(Button(ctx_t("btn.next_page"), callback(GLOBAL_TOKEN, action, offset + page)))
    return nav
