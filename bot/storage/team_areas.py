"""A team's 台区 as the step read last brought them, under the version that read saw, so that
a step does not read and parse every 台区 of a large team (issue #12: 5,000 in a 供电所 of a
province cost ~10 ms of CPU a step, 5-10x a whole step). The version (teams.areas_version,
moved on by triggers with every change to the team's 台区, migration 0035) comes from the
same read as the rest of the step, so a list is used only while no instance has changed it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from bot.models import Area
from bot.storage.db import Backend, held_by
from bot.vocab import AreaNames

# The version of the team of the person whose step is read (alias t = teams): the team's id
# too, so that a list held for another team is never taken for this one's.
VERSION = "CAST(t.id AS TEXT) || ':' || CAST(t.areas_version AS TEXT)"
# Identities remembered with their team (the guess sent with a step's read); past this many
# the memory starts over (a wrong or missing guess only makes the read bring the list).
GUESSES_KEPT = 100_000


@dataclass(frozen=True)
class TeamAreas:
    """Every 台区 of a team, in id order. Shared by the steps while current: not to be
    changed. `version`: None when read outside a step read (not held)."""

    team_id: int
    version: str | None
    areas: list[Area] = field(repr=False)

    @functools.cached_property
    def names(self) -> AreaNames:
        """The names, indexed once for reading them in sentences (bot.vocab.AreaNames)."""
        return AreaNames(a.name for a in self.areas)


class TeamAreasCache:
    """The lists the step reads brought, one per team, on one database handle (`of`)."""

    def __init__(self) -> None:
        self._teams: dict[int, TeamAreas] = {}
        self._team_of: dict[tuple[str, str], int] = {}  # identity -> its team at its last step

    @staticmethod
    def of(db: Backend) -> TeamAreasCache:
        return held_by(db, TeamAreasCache)

    def team_of(self, channel: str, external_id: str) -> int | None:
        """This identity's team as of its last step (None: not seen since the start)."""
        return self._team_of.get((channel, external_id))

    def guess(self, channel: str, external_id: str) -> TeamAreas | None:
        """The list held for this identity's team, as of its last step (None: none held)."""
        team_id = self.team_of(channel, external_id)
        return None if team_id is None else self._teams.get(team_id)

    def seen(self, channel: str, external_id: str, team_id: int,
             team: TeamAreas | None) -> None:
        """What a step read of this identity found: its team, and that team's list when the
        read brought it (or found the one held current)."""
        if len(self._team_of) >= GUESSES_KEPT:
            self._team_of.clear()
        self._team_of[(channel, external_id)] = team_id
        if team is not None and team.version is not None:
            self._teams[team.team_id] = team
