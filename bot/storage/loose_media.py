"""Photos and locations sent while no form is open, kept a few minutes for the next work log
(in the database, so a restart in between loses nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.storage.db import Database, iso


@dataclass
class Loose:
    """What one person sent within the window, oldest first."""

    photos: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # photo ref -> its caption
    location: tuple[float, float] | None = None  # the latest one


class LooseMedia:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def keep_photo(self, user_id: int, ref: str, caption: str | None, now: datetime,
                         window: timedelta) -> int:
        """Keep one photo; the number of photos this person has kept now."""
        await self._keep(user_id, now, window, photo=ref, caption=caption)
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM loose_media WHERE user_id = ? AND photo IS NOT NULL",
            (user_id,))
        return int(row[0]) if row else 0

    async def keep_location(self, user_id: int, point: tuple[float, float], now: datetime,
                            window: timedelta) -> None:
        await self._keep(user_id, now, window, latitude=point[0], longitude=point[1])

    async def take(self, user_id: int, now: datetime, window: timedelta) -> Loose | None:
        """Everything kept within the window, now given to a form: kept no longer."""
        async with self.db.tx() as tx:
            rows = await tx.fetchall(
                "SELECT photo, caption, latitude, longitude FROM loose_media "
                "WHERE user_id = ? AND received_at >= ? ORDER BY id",
                (user_id, iso(now - window)))
            await tx.execute("DELETE FROM loose_media WHERE user_id = ?", (user_id,))
        if not rows:
            return None
        loose = Loose()
        for r in rows:
            if r["photo"] is not None:
                loose.photos.append(r["photo"])
                if r["caption"]:
                    loose.notes[r["photo"]] = r["caption"]
            elif r["latitude"] is not None and r["longitude"] is not None:
                loose.location = (r["latitude"], r["longitude"])
        return loose

    async def _keep(self, user_id: int, now: datetime, window: timedelta, *,
                    photo: str | None = None, caption: str | None = None,
                    latitude: float | None = None, longitude: float | None = None) -> None:
        async with self.db.tx() as tx:
            # Past the window they are forgotten, everyone's: no sweeper job needed.
            await tx.execute("DELETE FROM loose_media WHERE received_at < ?",
                             (iso(now - window),))
            await tx.execute(
                "INSERT INTO loose_media(user_id, photo, caption, latitude, longitude, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, photo, caption, latitude, longitude, iso(now)))
