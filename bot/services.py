"""Everything a handler needs, built once per process and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.i18n import t
from bot.models import Area, User
from bot.storage.conversations import Conversations
from bot.storage.customers import Customers
from bot.storage.db import Backend
from bot.storage.pending import PendingChoices
from bot.storage.people import People
from bot.storage.stores import open_database
from bot.storage.team_areas import TeamAreas
from bot.storage.team_managers import TeamManagers
from bot.storage.worklogs import WorkLogs
from bot.vocab import AreaNames


@dataclass
class Services:
    settings: Settings
    db: Backend
    clock: Clock
    people: People
    worklogs: WorkLogs
    conversations: Conversations
    customers: Customers
    pending: PendingChoices

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None) -> Services:
        db = await open_database(settings).connect()
        return cls(settings, db, clock or SystemClock(), People(db), WorkLogs(db),
                   Conversations(db), Customers(db), PendingChoices(db))

    async def close(self) -> None:
        await self.conversations.close()  # forms held while the database was busy
        await self.db.close()

    @property
    def form_timeout(self) -> timedelta:
        return timedelta(minutes=self.settings.form_timeout_minutes)

    @property
    def form_park_window(self) -> timedelta:
        return timedelta(hours=self.settings.form_park_hours)


@dataclass
class Ctx:
    """One update being handled: who, in which language, at what time."""

    services: Services
    user: User
    now: datetime  # UTC
    # Known from the step's one read (bot.storage.steps), else read on first use.
    _areas: list[Area] | None = field(default=None, repr=False)
    _team_areas: TeamAreas | None = field(default=None, repr=False)
    # Whether photos or places sent with no form open wait for the next form (None: unknown).
    loose_media: bool | None = field(default=None, repr=False)
    # The working-day calendar's version the step's read saw (None: not read; see
    # bot.workcal.CalendarCache.of(services.db)).
    calendar_version: str | None = field(default=None, repr=False)
    # The person's last customer search as the step's read found it ('': none; None: not
    # read, Customers.last_search reads it).
    last_search: str | None = field(default=None, repr=False)
    # What a feature read once for this update and asks for again, by the feature's own key:
    # gone with the update, never seen by another.
    memo: dict[str, Any] = field(default_factory=dict, repr=False)
    # A lead's team's managers, from the step's read (bot.storage.team_managers).
    _team_managers: TeamManagers | None = field(default=None, repr=False)

    async def areas(self) -> list[Area]:
        """The user's areas, read once per update (prompts, summaries and saves all ask)."""
        if self._areas is None:
            self._areas = await self.services.people.areas_for(self.user)
        return self._areas

    async def team_areas(self) -> list[Area]:
        """Every area of the user's team (a sentence may name a teammate's), read once;
        shared with later steps while current (bot.storage.team_areas): not to be changed."""
        return (await self._team()).areas

    async def team_area_names(self) -> AreaNames:
        """The team's 台区 names, indexed for reading them in a sentence (bot.vocab)."""
        return (await self._team()).names

    async def _team(self) -> TeamAreas:
        if self._team_areas is None:
            self._team_areas = TeamAreas(self.user.team_id, None, await
                                         self.services.people.team_areas(self.user.team_id))
        return self._team_areas

    async def team_managers(self) -> list[tuple[int, str]]:
        """The active managers of the user's team (id, name) by id, the people a task can go
        to (its sentence, parsing, summary and save all ask): a lead's step read brings them,
        else read once per update. Shared with later steps while current: not to be changed."""
        if self._team_managers is None:
            self._team_managers = TeamManagers(self.user.team_id, None, await
                                               self.services.people.team_managers(
                                                   self.user.team_id))
        return self._team_managers.managers

    @property
    def locale(self) -> str:
        return self.user.locale or self.services.settings.locale

    @property
    def tz(self) -> ZoneInfo:
        return self.services.settings.tz

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.tz)

    def t(self, key: str, **kwargs: Any) -> str:
        return t(self.locale, key, **kwargs)
