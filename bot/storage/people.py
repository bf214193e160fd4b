"""Teams, areas, users, chat identities and invite codes."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.models import Area, Role, User
from bot.storage.db import Database, Read, Row, Tx, from_iso, iso
from bot.storage.reminders import LEADS_OF_TEAM, Reminders
from bot.storage.team_managers import MANAGERS

# Crockford-style alphabet: no 0/O or 1/I/L to misread when a code is read out over the phone.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12  # ~59 bits: not guessable at any rate a chat allows


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))


_USER_SQL = """
SELECT u.id, u.name, u.role, u.team_id, t.name AS team_name, u.locale,
       s.unreachable_at IS NOT NULL AS unreachable
FROM users u JOIN teams t ON t.id = u.team_id LEFT JOIN user_settings s ON s.user_id = u.id
"""
# A person's identities, the one they used most recently first (where pushes go).
LATEST = "last_seen_at IS NULL, last_seen_at DESC, created_at DESC, channel"
# "The leads of a team", defined once: its active users with the lead role. Alias u = users.


def user_of(row: Row) -> User:
    return User(row["id"], row["name"], Role(row["role"]), row["team_id"], row["team_name"],
                row["locale"], bool(row["unreachable"]))


class InviteError(Exception):
    """Why a code was refused: 'unknown', 'used' or 'expired'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invite:
    code: str
    team_id: int
    role: Role
    expires_at: datetime


class People:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- teams and areas -------------------------------------------------------------
    async def ensure_team(self, tx: Tx, name: str, now: datetime) -> int:
        row = await tx.fetchone("SELECT id FROM teams WHERE name = ?", (name,))
        if row:
            return int(row["id"])
        return int(await tx.execute("INSERT INTO teams(name, created_at) VALUES (?, ?)",
                                    (name, iso(now))) or 0)

    async def ensure_area(self, tx: Tx, team_id: int, name: str, now: datetime) -> int:
        row = await tx.fetchone("SELECT id FROM areas WHERE team_id = ? AND name = ?",
                                (team_id, name))
        if row:
            return int(row["id"])
        return int(await tx.execute(
            "INSERT INTO areas(team_id, name, created_at) VALUES (?, ?, ?)",
            (team_id, name, iso(now))) or 0)

    async def team_count(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM teams")
        return int(row[0]) if row else 0

    async def areas_for(self, user: User) -> list[Area]:
        """The areas a user works in: a manager's own, the whole team for a lead or admin."""
        if user.sees_whole_team:
            rows = await self.db.fetchall(
                "SELECT id, team_id, name, kind FROM areas WHERE team_id = ? ORDER BY id",
                (user.team_id,))
        else:
            rows = await self.db.fetchall(
                "SELECT a.id, a.team_id, a.name, a.kind FROM areas a "
                "JOIN user_areas ua ON ua.area_id = a.id WHERE ua.user_id = ? ORDER BY a.id",
                (user.id,))
        return [Area(r["id"], r["team_id"], r["name"], r["kind"]) for r in rows]

    async def team_areas(self, team_id: int) -> list[Area]:
        rows = await self.db.fetchall(
            "SELECT id, team_id, name, kind FROM areas WHERE team_id = ? ORDER BY id", (team_id,))
        return [Area(r["id"], r["team_id"], r["name"], r["kind"]) for r in rows]

    async def team_managers(self, team_id: int) -> list[tuple[int, str]]:
        """The team's active managers (id, name) by id (a lead's step reads them itself)."""
        rows = await self.db.fetchall(
            f"SELECT m.id, m.name {MANAGERS.format(team='?')} ORDER BY m.id", (team_id,))
        return [(int(r["id"]), str(r["name"])) for r in rows]

    # --- users ----------------------------------------------------------------------
    async def user(self, user_id: int) -> User | None:
        row = await self.db.fetchone(_USER_SQL + " WHERE u.id = ? AND u.active = 1", (user_id,))
        return user_of(row) if row else None

    async def deactivated_user(self, user_id: int) -> User | None:
        """A user whose account was deactivated (their reminders go to the leads)."""
        row = await self.db.fetchone(_USER_SQL + " WHERE u.id = ? AND u.active = 0", (user_id,))
        return user_of(row) if row else None

    async def by_identity(self, channel: str, external_id: str) -> User | None:
        row = await self.db.fetchone(
            _USER_SQL + " JOIN identities i ON i.user_id = u.id "
            "WHERE i.channel = ? AND i.external_id = ? AND u.active = 1",
            (channel, external_id))
        return user_of(row) if row else None

    async def leads_of(self, team_id: int, *exclude: int) -> list[User]:
        """The team's leads, without the people in `exclude` (e.g. a lead who acted)."""
        rows = await self.db.fetchall(*self.leads_read(team_id))
        return [u for u in map(user_of, rows) if u.id not in exclude]

    async def matching(self, who: str, params: Sequence[Any] = ()) -> list[User]:
        """The users the SQL condition `who` over users `u` (and its parameters) selects, by
        id: e.g. the people a write finds by the same SQL (who decides on an arrears)."""
        rows = await self.db.fetchall(_USER_SQL + f" WHERE {who} ORDER BY u.id", params)
        return [user_of(r) for r in rows]

    @staticmethod
    def leads_read(team_id: int) -> Read:
        """`leads_of` declared (a button's read of them, Router.button(reads=...))."""
        return _USER_SQL + f" WHERE {LEADS_OF_TEAM} ORDER BY u.id", (team_id,)

    async def users(self) -> list[User]:
        rows = await self.db.fetchall(_USER_SQL + " WHERE u.active = 1 ORDER BY u.id")
        return [user_of(r) for r in rows]

    async def identities_of(self, user_id: int) -> list[tuple[str, str]]:
        """The person's chat identities, the one they used most recently first."""
        rows = await self.db.fetchall(
            f"SELECT channel, external_id FROM identities WHERE user_id = ? ORDER BY {LATEST}",
            (user_id,))
        return [(r["channel"], r["external_id"]) for r in rows]

    async def first_visit(self, user_id: int) -> datetime | None:
        """When the person first reached the bot on any channel (None: not yet)."""
        row = await self.db.fetchone(
            "SELECT min(created_at) FROM identities WHERE user_id = ?", (user_id,))
        return from_iso(row[0]) if row and row[0] else None

    def seen(self, channel: str, external_id: str, now: datetime) -> None:
        """The identity was just used (pushes go to the one used last): written with the
        step's own write (one statement more in its round trip), or behind the reply when
        the step writes nothing, so a database locked by another process never delays it."""
        self.db.write_along(
            "UPDATE identities SET last_seen_at = ? WHERE channel = ? AND external_id = ?",
            (iso(now), channel, external_id), "last_seen_at")

    async def create_user(self, tx: Tx, name: str, role: Role, team_id: int,
                          area_ids: list[int], now: datetime, locale: str | None = None) -> int:
        uid = int(await tx.execute(
            "INSERT INTO users(name, role, team_id, locale, created_at) VALUES (?, ?, ?, ?, ?)",
            (name, role.value, team_id, locale, iso(now))) or 0)
        await tx.executemany("INSERT INTO user_areas(user_id, area_id) VALUES (?, ?) "
                             "ON CONFLICT DO NOTHING",
                             [(uid, a) for a in area_ids])
        return uid

    async def link_identity(self, tx: Tx, channel: str, external_id: str, user_id: int,
                            now: datetime) -> None:
        first = await tx.fetchone("SELECT 1 FROM identities WHERE user_id = ? LIMIT 1",
                                  (user_id,)) is None
        await tx.execute(
            "INSERT INTO identities(channel, external_id, user_id, created_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(channel, external_id) DO UPDATE SET "
            "user_id = excluded.user_id, last_seen_at = excluded.last_seen_at",
            (channel, external_id, user_id, iso(now), iso(now)))
        await Reminders.release_waiting(tx, user_id, now, held_too=first)

    async def set_locale(self, user_id: int, locale: str) -> None:
        await self.db.execute("UPDATE users SET locale = ? WHERE id = ?", (locale, user_id))

    # --- invites --------------------------------------------------------------------
    async def create_invite(self, *, role: Role, team: str, areas: list[str], name: str | None,
                            now: datetime, ttl: timedelta) -> Invite:
        """Creates the team and areas if new; returns the one-time code (only its hash is kept).
        A named invite creates the person now (no chat identity yet): the team's pushes to
        them wait for their first visit, and the local chat can sign in as them by name."""
        code = new_code()
        async with self.db.tx() as tx:
            team_id = await self.ensure_team(tx, team, now)
            area_ids = [await self.ensure_area(tx, team_id, a, now) for a in areas]
            user_id = (await self.create_user(tx, name, role, team_id, area_ids, now)
                       if name else None)
            await tx.execute(
                "INSERT INTO invites(code_hash, role, team_id, area_ids, name, created_at, "
                "expires_at, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_hash(code), role.value, team_id, json.dumps(area_ids), name, iso(now),
                 iso(now + ttl), user_id))
        return Invite(code, team_id, role, now + ttl)

    async def redeem_invite(self, code: str, *, channel: str, external_id: str,
                            fallback_name: str, now: datetime) -> User:
        """Turn a valid code into a user bound to this chat identity, in one transaction."""
        async with self.db.tx() as tx:
            row = await tx.fetchone("SELECT * FROM invites WHERE code_hash = ?", (_hash(code),))
            if row is None:
                raise InviteError("unknown")
            if row["used_at"] is not None:
                raise InviteError("used")
            if from_iso(row["expires_at"]) <= now:
                raise InviteError("expired")
            uid = row["user_id"] or await self.create_user(
                tx, row["name"] or fallback_name, Role(row["role"]), row["team_id"],
                json.loads(row["area_ids"]), now)
            await self.link_identity(tx, channel, external_id, uid, now)
            await tx.execute("UPDATE invites SET used_at = ?, used_by = ? WHERE id = ?",
                             (iso(now), uid, row["id"]))
        user = await self.user(uid)
        assert user is not None
        return user


@dataclass(frozen=True)
class Prefs:
    quiet_start: str | None
    quiet_end: str | None
    quiet_off: bool
    unreachable_at: datetime | None


class UserPrefs:
    """Quiet hours and reachability, per user."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def get_read(user_id: int) -> Read:
        """`get` declared (a button's read, Router.button(reads=...))."""
        return "SELECT * FROM user_settings WHERE user_id = ?", (user_id,)

    async def get(self, user_id: int) -> Prefs:
        row = await self.db.fetchone(*self.get_read(user_id))
        if row is None:
            return Prefs(None, None, False, None)
        return Prefs(row["quiet_start"], row["quiet_end"], bool(row["quiet_off"]),
                     from_iso(row["unreachable_at"]) if row["unreachable_at"] else None)

    async def set_quiet(self, user_id: int, start: str | None, end: str | None,
                        off: bool = False) -> None:
        await self.db.execute(
            "INSERT INTO user_settings(user_id, quiet_start, quiet_end, quiet_off) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET quiet_start = "
            "excluded.quiet_start, quiet_end = excluded.quiet_end, quiet_off = excluded.quiet_off",
            (user_id, start, end, int(off)))

    async def set_unreachable(self, user_id: int, when: datetime | None) -> None:
        await self.db.execute(
            "INSERT INTO user_settings(user_id, unreachable_at) VALUES (?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET unreachable_at = excluded.unreachable_at",
            (user_id, iso(when) if when else None))
