"""Help, the unknown-command answer and the welcome by role (issue #15 §4.2): every command
the person's role can use, one short line each, most used first (a manager logs, a lead
reads the report and decides); an admin is told where the admin tools are. Core dialogue,
real SQLite, the real invite path for the welcome."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.assistant import Assistant
from bot.models import Role
from bot.services import Services
from tests.conftest import Chat, make_user
from tests.tg_harness import L

pytestmark = pytest.mark.timeout(60)

# The order each role reads, written out here so the test pins it (not derived from the code).
# A feature's command the role list does not name comes before the core's tail, in the
# composition root's order (/meter; /connection; /hazard; /task, /tasks, /up; /plan;
# /remind; /lineloss).
EXTRA = ("meter", "connection", "hazard", "task", "tasks", "up", "plan", "remind", "lineloss")
MANAGER = ("log", "logs", "todo", "customers", "customer", "complaint", "arrears", "outage",
           "repair", "report", "export", *EXTRA, "settings", "cancel", "lang", "help")
LEAD = ("report", "todo", "logs", "customers", "export", "complaint", "arrears", "outage",
        "repair", "log", "customer", *EXTRA, "settings", "cancel", "lang", "help")
# The features' own lines under the list.
FEATURE_HELP = ("arrimp.help", "help.meter", "connection.help", "hazard.help", "task.help",
                "up.help", "plan.help", "help.notes", "lineloss.help")


def lines_of(commands: tuple[str, ...], locale: str = "zh_CN") -> str:
    return "\n".join(f"/{c} {L(f'cmd.{c}', locale)}" for c in commands)


def buttons(chat: Chat) -> list[list[str]]:
    assert chat.last is not None
    return [[b.label for b in row] for r in chat.last.replies for row in r.buttons]


async def welcome(services: Services, assistant: Assistant, name: str, role: Role,
                  areas: list[str]) -> Chat:
    invite = await services.people.create_invite(
        role=role, team="城东供电所", areas=areas, name=name, now=services.clock.now(),
        ttl=timedelta(days=1))
    chat = Chat(assistant, "test", name)
    await chat.say(f"/start {invite.code}")
    return chat


async def test_help_and_unknown_command_list_the_roles_commands(
        services: Services, assistant: Assistant) -> None:
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await make_user(services, "赵管理", role=Role.ADMIN, areas=())
    zhang, lead = Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")
    admin = Chat(assistant, "test", "赵管理")

    await zhang.say("/help")
    assert zhang.text == "\n".join([
        L("help.body"), lines_of(MANAGER), "", L("help.say"), L("help.forms"),
        *map(L, FEATURE_HELP), L("menu.role.manager", team="城东供电所", areas="3号台区、5号台区")])
    await lead.say("帮助")
    assert lead.text == "\n".join([
        L("help.body"), lines_of(LEAD), "", L("help.say"), L("help.forms"),
        *map(L, FEATURE_HELP), L("menu.role.lead", team="城东供电所", areas="3号台区、5号台区")])
    assert buttons(lead) == [[L("btn.menu_report"), L("btn.todo")], [L("btn.menu_help")]]
    await admin.say("/help")
    assert lines_of(LEAD) in admin.text and L("help.admin") in admin.text
    assert L("help.admin") not in lead.text

    await zhang.say("/foo")
    assert zhang.text == L("menu.unknown_command", command="foo", commands=lines_of(MANAGER))
    await lead.say("/foo")
    assert lead.text == L("menu.unknown_command", command="foo", commands=lines_of(LEAD))
    await lead.say("/lang en")
    await lead.say("/foo")
    assert lead.text == L("menu.unknown_command", "en", command="foo",
                          commands=lines_of(LEAD, "en"))


async def test_the_welcome_differs_for_a_lead_and_a_manager(
        services: Services, assistant: Assistant) -> None:
    zhang = await welcome(services, assistant, "张三", Role.MANAGER, ["3号台区"])
    assert zhang.text == "\n".join([
        L("menu.welcome", name="张三"), L("menu.role.manager", team="城东供电所", areas="3号台区"),
        "", L("menu.can_do.manager")])
    assert buttons(zhang) == [[L("btn.menu_log"), L("btn.menu_logs")],
                              [L("btn.todo"), L("btn.menu_help")]]
    lead = await welcome(services, assistant, "王班长", Role.LEAD, [])
    assert lead.text == "\n".join([
        L("menu.welcome", name="王班长"), L("menu.role.lead", team="城东供电所", areas="3号台区"),
        "", L("menu.can_do.lead")])
    assert buttons(lead) == [[L("btn.menu_report"), L("btn.todo")], [L("btn.menu_help")]]
    await lead.press(L("btn.menu_report"))
    assert "城东供电所" in lead.text  # the team's report
    await lead.say("/start")  # later greetings keep the role's words and buttons
    assert L("menu.can_do.lead") in lead.text and buttons(lead)[0][0] == L("btn.menu_report")
