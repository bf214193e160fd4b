"""Greeting, help, language and the replies for what the bot did not understand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback, pager  # noqa: F401
from bot.i18n import catalog, normalize_locale, t
from bot.models import Role
from bot.router import Router, app_router
from bot.services import Ctx
from bot.vocab import SMALL_TALK, simple_intent

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

COMMANDS = ("log", "logs", "customer", "customers", "cancel", "help", "lang")
# What help and the unknown-command answer list for each role, most used first: a manager
# logs and visits, a lead reads the report and decides. A registered command missing here
# still shows, after these (command_lines), so a new module is never hidden.
_MANAGER = ("log", "logs", "todo", "customers", "customer", "complaint", "arrears", "outage",
            "repair", "report", "export", "settings", "cancel", "lang", "help")
_LEAD = ("report", "todo", "logs", "customers", "export", "complaint", "arrears", "outage",
         "repair", "log", "customer", "settings", "cancel", "lang", "help")
ROLE_COMMANDS: dict[Role, tuple[str, ...]] = {
    Role.MANAGER: _MANAGER, Role.LEAD: _LEAD, Role.ADMIN: _LEAD}
# The core's own commands and words, routed like a feature's and ahead of every feature.
router = Router()


def menu_buttons(locale: str) -> list[list[Button]]:
    return [[Button(t(locale, "btn.menu_log"), callback(GLOBAL_TOKEN, "cmd", "log")),
             Button(t(locale, "btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))],
            [Button(t(locale, "btn.menu_help"), callback(GLOBAL_TOKEN, "cmd", "help"))]]


def role_buttons(locale: str, role: Role) -> list[list[Button]]:
    """A manager starts with the log, a lead with the report; both with the to-do list."""
    def cmd(label: str, command: str) -> Button:
        return Button(t(locale, label), callback(GLOBAL_TOKEN, "cmd", command))

    todo, help_ = cmd("btn.todo", "todo"), cmd("btn.menu_help", "help")
    if role is Role.MANAGER:
        return [[cmd("btn.menu_log", "log"), cmd("btn.menu_logs", "logs")], [todo, help_]]
    return [[cmd("btn.menu_report", "report"), todo], [help_]]


async def _who(ctx: Ctx) -> str:
    user = ctx.user
    areas = await ctx.areas()  # brought by the step's read (issue #12): no read of its own
    names = "、".join(a.name for a in areas) or ctx.t("menu.no_areas")
    return ctx.t(f"menu.role.{user.role.value}", team=user.team_name, areas=names)


async def greeting(ctx: Ctx, welcome: bool = False) -> Outcome:
    key = "menu.welcome" if welcome else "menu.hello"
    role = "manager" if ctx.user.role is Role.MANAGER else "lead"  # an admin works as a lead
    text = "\n".join([ctx.t(key, name=ctx.user.name), await _who(ctx), "",
                      ctx.t(f"menu.can_do.{role}")])
    return Outcome().add(text, role_buttons(ctx.locale, ctx.user.role))


# The core's own commands close the list; a feature's command the role lists do not name
# comes before them (a new feature shows up without an edit here).
_CORE_TAIL = ("settings", "cancel", "lang", "help")


def command_lines(ctx: Ctx) -> str:
    """Every command this person's role can use, one short line each."""
    ours = ROLE_COMMANDS[ctx.user.role]
    extra = [c for c in (*COMMANDS, *app_router().commands) if c not in ours]
    names = ([c for c in ours if c not in _CORE_TAIL] + extra
             + [c for c in ours if c in _CORE_TAIL])
    known = catalog(ctx.locale)
    return "\n".join(f"/{c} {known[f'cmd.{c}']}" for c in dict.fromkeys(names)
                     if f"cmd.{c}" in known)


async def help_text(ctx: Ctx) -> str:
    parts = [ctx.t("help.body"), command_lines(ctx), "", ctx.t("help.say"), ctx.t("help.forms"),
             *(ctx.t(key) for key in app_router().help_lines)]
    if ctx.user.role is Role.ADMIN:  # the admin's own tools are on the server, not in chat
        parts.append(ctx.t("help.admin"))
    return "\n".join([*parts, await _who(ctx)])


async def set_language(ctx: Ctx, arg: str) -> Outcome:
    locale = normalize_locale(arg)
    if locale is None:
        return Outcome().add(ctx.t("lang.usage"))
    await ctx.services.people.set_locale(ctx.user.id, locale)
    return Outcome(commands_changed=True).add(t(locale, "lang.set"), menu_buttons(locale))


def command_descriptions(locale: str, router: Router | None = None) -> list[tuple[str, str]]:
    """The menu a platform shows next to the input box, in the user's language."""
    commands = (router or app_router()).commands
    names = list(COMMANDS) + [c for c in commands if c not in COMMANDS]
    return [(c, t(locale, f"cmd.{c}")) for c in names if f"cmd.{c}" in catalog(locale)]


@router.command("cancel")
async def cancel_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if draft is None:
        return Outcome().add(ctx.t("form.nothing_to_cancel"), menu_buttons(ctx.locale))
    return await app.engine.confirm_cancel(ctx, draft)


@router.command("help")
async def help_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    body = await help_text(ctx)
    if draft is not None:  # help never costs the form: answer, then ask again
        out = await app.engine.reprompt(ctx, draft, ctx.t("help.in_form"))
        out.replies.insert(0, Reply(body))
        return out
    return Outcome().add(body, role_buttons(ctx.locale, ctx.user.role))


@router.command("lang")
async def lang_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    out = await set_language(ctx, arg)
    if draft is not None and out.commands_changed:
        fresh = await app.user_for_id(ctx.user.id)
        out.replies += (await app.engine.reprompt(Ctx(ctx.services, fresh, ctx.now),
                                                  draft)).replies
    return out


@router.intent
async def help_or_greeting(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    simple = simple_intent(text)
    if simple == "help":
        return Outcome().add(await help_text(ctx), role_buttons(ctx.locale, ctx.user.role))
    if simple == "greet":
        return await greeting(ctx)
    if simple in SMALL_TALK:
        return Outcome().add(ctx.t(f"menu.small_talk.{simple}", name=ctx.user.name),
                             menu_buttons(ctx.locale))
    return None
