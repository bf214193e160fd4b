"""What one chat step needs from the database, read in one statement: whose identity it is,
the person, their open form, their 台区 (and the team's while no form is open, for a sentence
naming a teammate's 台区, unless the list held is current: bot.storage.team_areas; a lead's,
the team's managers likewise: bot.storage.team_managers), whether
photos wait for the next form, when the identity was last used and the numbered choices it
was last shown, and their last customer search (what its ▶️ pages through).

Issue #12: a step makes at most 2 round trips, this read and the form's write. Before, the
same took four or five (identity, user, form, areas, loose media), each a hop to SQLite's
worker thread or a request over the network to PostgreSQL."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.models import Area, User
from bot.storage.conversations import Draft, draft_of
from bot.storage.db import Backend, Read, Row, from_iso
from bot.storage.pending import PendingChoices
from bot.storage.people import LATEST, user_of
from bot.storage.team_areas import VERSION as TEAM_AREAS_VERSION
from bot.storage.team_areas import TeamAreas, TeamAreasCache
from bot.storage.team_managers import MANAGERS, TeamManagers, TeamManagersCache
from bot.storage.team_managers import VERSION as TEAM_MANAGERS_VERSION
from bot.workcal import CalendarCache

SEES_WHOLE_TEAM = "u.role IN ('lead', 'admin')"  # User.sees_whole_team, in SQL
_MINE = "FROM areas a JOIN user_areas ua ON ua.area_id = a.id WHERE ua.user_id = u.id"
_TEAM = "FROM areas a WHERE a.team_id = u.team_id"
# The working-day calendar's version: every change to the overrides (taiqu-bot calendar, on
# any instance) adds or deletes a row or sets its created_at to its time, so the count and
# the latest created_at change with it. Read only with a form open: only a save needs it.
CALENDAR_VERSION = ("(SELECT CAST(count(*) AS TEXT) || '/' || coalesce(max(created_at), '') "
                    "FROM calendar_overrides)")


@functools.cache
def step_sql(json_rows: str) -> str:
    agg = f"SELECT {json_rows.format('a.id, a.team_id, a.name, a.kind')} {{rest}}"
    overrides = f"SELECT {json_rows.format('day, kind, note')} FROM calendar_overrides"
    managers = f"SELECT {json_rows.format('m.id, m.name')} {MANAGERS.format(team='u.team_id')}"
    # Driven by the identity asked about, so a stranger's numbered choices are read too.
    return f"""
SELECT i.user_id AS identity_user, u.id, u.name, u.role, u.team_id, t.name AS team_name,
       u.locale, s.unreachable_at IS NOT NULL AS unreachable,
       CASE WHEN (SELECT channel || ':' || external_id FROM identities
                  WHERE user_id = i.user_id ORDER BY {LATEST} LIMIT 1)
                 = k.channel || ':' || k.external_id
            THEN i.last_seen_at END AS seen_at,
       c.form, c.token, c.state, c.started_at, c.updated_at,
       CASE WHEN NOT {SEES_WHOLE_TEAM} THEN ({agg.format(rest=_MINE)}) END AS my_areas,
       {TEAM_AREAS_VERSION} AS team_areas_version,
       CASE WHEN ({SEES_WHOLE_TEAM} OR c.user_id IS NULL)
                 AND {TEAM_AREAS_VERSION} <> coalesce(CAST(? AS TEXT), '')
            THEN ({agg.format(rest=_TEAM)}) END AS team_areas,
       {TEAM_MANAGERS_VERSION} AS team_managers_version,
       CASE WHEN {SEES_WHOLE_TEAM}
                 AND {TEAM_MANAGERS_VERSION} <> coalesce(CAST(? AS TEXT), '')
            THEN ({managers}) END AS team_managers,
       CASE WHEN c.user_id IS NULL
            THEN EXISTS (SELECT 1 FROM loose_media m WHERE m.user_id = u.id) END AS loose_media,
       p.choices,
       coalesce((SELECT query FROM searches WHERE user_id = u.id), '') AS last_search,
       CASE WHEN c.user_id IS NOT NULL THEN {CALENDAR_VERSION} END AS calendar_version,
       CASE WHEN c.user_id IS NOT NULL AND {CALENDAR_VERSION} <> coalesce(CAST(? AS TEXT), '')
            THEN ({overrides}) END AS calendar_rows
FROM (SELECT CAST(? AS TEXT) AS channel, CAST(? AS TEXT) AS external_id) k
LEFT JOIN identities i ON i.channel = k.channel AND i.external_id = k.external_id
LEFT JOIN users u ON u.id = i.user_id AND u.active = 1
LEFT JOIN teams t ON t.id = u.team_id
LEFT JOIN user_settings s ON s.user_id = u.id
LEFT JOIN conversations c ON c.user_id = u.id
LEFT JOIN pending_choices p ON p.channel = k.channel AND p.external_id = k.external_id"""


@dataclass(frozen=True)
class StepRead:
    user_id: int | None = None  # whose identity this is, active or not (None: a stranger)
    user: User | None = None  # the active person
    draft: Draft | None = None  # their open form as stored (Conversations.current: held too)
    areas: list[Area] | None = None  # Ctx.areas(); None: not read
    # None: not read (a form is open) and the list held is not current.
    team_areas: TeamAreas | None = None
    loose_media: bool | None = None  # kept photos or places wait; None: not read
    # When this identity was last used, if it is the one pushes go to (People.identities_of
    # gives it first); None: another one, or never.
    seen_at: datetime | None = None
    # With a form open: the calendar overrides' version (their rows, when it was not the one
    # held, went to bot.workcal.CalendarCache on the way).
    calendar_version: str | None = None
    # A lead's: the team's managers (brought by the read, or the ones held, found current).
    team_managers: TeamManagers | None = None
    # The person's last 查客户 query, what its ◀️ ▶️ page through ('': none; None: not read).
    last_search: str | None = None
    # The rows of the reads the button tapped declared (Router.button(reads=...)), read with
    # this one: a list per read, in order.
    more: tuple[list[Row], ...] = ()


def _areas(text: str | None) -> list[Area] | None:
    if text is None:
        return None
    return sorted((Area(int(i), int(team), name, kind) for i, team, name, kind
                   in json.loads(text)), key=lambda a: a.id)


def _step(row: Row, team: TeamAreas | None, managers: TeamManagers | None) -> StepRead:
    if row["identity_user"] is None:
        return StepRead()  # a stranger
    if row["id"] is None:  # an identity whose person was deactivated
        return StepRead(user_id=int(row["identity_user"]))
    user = user_of(row)
    draft = (draft_of(user.id, row["form"], row["token"], row["state"], row["started_at"],
                      row["updated_at"]) if row["form"] is not None else None)
    loose = row["loose_media"]
    return StepRead(user.id, user, draft, team.areas if user.sees_whole_team and team else
                    _areas(row["my_areas"]), team, None if loose is None else bool(loose),
                    from_iso(row["seen_at"]) if row["seen_at"] else None, row["calendar_version"],
                    managers if user.sees_whole_team else None, last_search=row["last_search"])


def _team(row: Row, held: TeamAreas | None) -> TeamAreas | None:
    """The team's list: brought by the read, else the one held if the read found it current."""
    if row["team_areas"] is not None:
        return TeamAreas(int(row["team_id"]), row["team_areas_version"],
                         _areas(row["team_areas"]) or [])
    if held is not None and held.version == row["team_areas_version"]:
        return held
    return None


def _managers(row: Row, held: TeamManagers | None) -> TeamManagers | None:
    """The team's managers, as _team finds its 台区."""
    if row["team_managers"] is not None:
        return TeamManagers(int(row["team_id"]), row["team_managers_version"], sorted(
            (int(i), str(name)) for i, name in json.loads(row["team_managers"])))
    return held if held is not None and held.version == row["team_managers_version"] else None


async def read_step(db: Backend, pending: PendingChoices, channel: str, external_id: str,
                    more: Sequence[Read] = ()) -> StepRead:
    """One indexed read (on SQLite on the event loop, see Database.fetchone_point), with
    `more` (short reads by key: what the button tapped declared) in the same round trip; the
    identity's numbered choices, if any, are handed to `pending` on the way, the calendar
    overrides, when they changed, to the database's CalendarCache, and the team's 台区, when
    they changed (or were not held), to its TeamAreasCache (a lead's team's managers, so, to
    its TeamManagersCache)."""
    held = CalendarCache.of(db)
    teams = TeamAreasCache.of(db)
    guess = teams.guess(channel, external_id)
    managers = TeamManagersCache.of(db)
    held_managers = managers.held(teams.team_of(channel, external_id))
    row, rows = await db.fetch_point_with(step_sql(db.json_rows), (
        guess.version if guess else None, held_managers.version if held_managers else None,
        held.version, channel, external_id), more)
    assert row is not None  # one row always: the identity asked about
    pending.prime(channel, external_id, row["choices"])
    held.offer(row["calendar_version"], row["calendar_rows"])
    if row["id"] is None:
        step = _step(row, None, None)
    else:
        team, mine = _team(row, guess), _managers(row, held_managers)
        teams.seen(channel, external_id, int(row["team_id"]), team)
        managers.keep(mine)
        step = _step(row, team, mine)
    return dataclasses.replace(step, more=tuple(rows)) if rows else step
