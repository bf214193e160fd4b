"""A team's managers (id, name), the people a lead's task can go to, as the step read last
brought them, under the version that read saw (teams.members_version, moved on by triggers
with every change to who is in the team, migration 0037): a lead's step (派任务's sentence,
its summary, its save) then reads them with the rest of the step, not in a round trip of
its own (issue #12), and only when no instance has changed them since they were held. Kept
per team beside the team's 台区 (bot.storage.team_areas), whose guess of an identity's team
it shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.storage.db import Backend, held_by

# The version of the team of the person whose step is read (alias t = teams), the team's id
# in it: a list held for another team is never taken for this one's.
VERSION = "CAST(t.id AS TEXT) || ':' || CAST(t.members_version AS TEXT)"
# The team's active managers (alias m = users; the team's id as `team`): the step read's
# and People.team_managers' one definition.
MANAGERS = "FROM users m WHERE m.team_id = {team} AND m.role = 'manager' AND m.active = 1"


@dataclass(frozen=True)
class TeamManagers:
    """The active managers of a team, in id order. Shared by the steps while current: not to
    be changed. `version`: None when read outside a step read (not held)."""

    team_id: int
    version: str | None
    managers: list[tuple[int, str]] = field(repr=False)


class TeamManagersCache:
    """The lists the step reads brought, one per team, on one database handle (`of`)."""

    def __init__(self) -> None:
        self._teams: dict[int, TeamManagers] = {}

    @staticmethod
    def of(db: Backend) -> TeamManagersCache:
        return held_by(db, TeamManagersCache)

    def held(self, team_id: int | None) -> TeamManagers | None:
        return None if team_id is None else self._teams.get(team_id)

    def keep(self, team: TeamManagers | None) -> None:
        if team is not None and team.version is not None:
            self._teams[team.team_id] = team
