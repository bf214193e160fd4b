"""The one visibility policy (bot/visibility.py), once per role, and through the chat."""

from __future__ import annotations

import pytest

from bot.assistant import Assistant
from bot.models import Role, User
from bot.services import Services
from bot.visibility import Subject, may_see, scope
from tests.conftest import Chat, make_user
from tests.test_customers import _register as register_customer


def _user(role: Role, uid: int = 1, team: int = 10) -> User:
    return User(id=uid, name="x", role=role, team_id=team, team_name="t", locale=None)


@pytest.mark.parametrize(("role", "own_only"), [
    (Role.MANAGER, {Subject.LOG, Subject.RECORD}), (Role.LEAD, set()), (Role.ADMIN, set())])
def test_each_role_sees_its_team_and_nobody_another_team(role: Role,
                                                         own_only: set[Subject]) -> None:
    me = _user(role)
    for what in Subject:
        assert may_see(me, what, 10, me.id)  # one's own, always
        assert may_see(me, what, 10, 2) is (what not in own_only)  # a colleague's
        assert not may_see(me, what, 11, me.id) and not may_see(me, what, 11, 2)
        where, params = scope(me, what, "x")
        assert (where, params) == (("x.user_id = ?", [1]) if what in own_only
                                   else ("x.team_id = ?", [10]))


async def test_an_admin_does_not_see_another_teams_customers(
        services: Services, assistant: Assistant, zhang: Chat) -> None:
    """README: nobody sees another team; the register used to show an admin every team's."""
    await register_customer(zhang)
    await make_user(services, "管理员", Role.ADMIN, team="城西供电所", areas=())
    admin = Chat(assistant, "test", "管理员")
    await admin.say("查客户 李四")
    assert "没有找到" in admin.text, admin.text
    await admin.tap("-|cust|1")
    assert "5500012345" not in admin.text and "李四" not in admin.text
