"""Who sees which logs, customers and records, written once (README: a manager sees their own
logs and records and the team's special customers; a lead or an admin the whole team; nobody
sees another team)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from bot.models import User


class Subject(StrEnum):
    LOG = "log"
    CUSTOMER = "customer"  # the special-customer register is shared by the whole team
    RECORD = "record"  # complaints, arrears, outages, repairs


def sees_team(user: User, what: Subject) -> bool:
    """True: the user sees the whole team's; False: only their own."""
    return what is Subject.CUSTOMER or user.sees_whole_team


def may_see(user: User, what: Subject, team_id: int, owner_id: int | None) -> bool:
    if team_id != user.team_id:
        return False
    return sees_team(user, what) or owner_id == user.id


def scope(user: User, what: Subject, alias: str) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) for the rows of `alias` the user may see; the
    table has team_id and, for logs and records, user_id."""
    if sees_team(user, what):
        return f"{alias}.team_id = ?", [user.team_id]
    return f"{alias}.user_id = ?", [user.id]
