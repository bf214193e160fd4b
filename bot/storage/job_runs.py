"""job_runs: whom a once-per-period job (the morning digest, the Monday report) served, and
whose send is in flight.

A person's send is claimed before it is made, with an expiry (issue #11): the claim row is
unique on (job, period, person), so of two instances only one makes it (an instance whose
lease ran out while it stalled, and the one that took the scan over). A claim that ran out
unfinished belongs to a sender that died mid-push: it is taken over and its send repeated,
marked as a possible repeat (the one in flight may have arrived). A definite failure (a
flood limit, a fault before the push) gives the claim back, and a later scan tries again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Backend, iso

_KEY = "job = ? AND period = ? AND user_id = ?"


@dataclass(frozen=True)
class JobClaim:
    job: str
    period: str
    who: int  # a user id (a team id for a team's job)
    token: str  # this claim's own: only its maker finishes or gives it back
    repeat: bool  # taken over from a sender that died mid-push: it may have arrived


async def served(db: Backend, job: str, period: str, now: datetime) -> set[int]:
    """Who `job` served in `period`, or is being served by a live claim right now."""
    rows = await db.fetchall(
        "SELECT user_id FROM job_runs WHERE job = ? AND period = ? "
        "AND (claimed_until IS NULL OR claimed_until > ?)", (job, period, iso(now)))
    return {r[0] for r in rows}


async def claim(db: Backend, job: str, period: str, who: int, now: datetime,
                until: datetime) -> JobClaim | None:
    """The send to `who` is this caller's until `until`; None when it was made already or
    another sender's claim still lasts."""
    token = uuid.uuid4().hex
    async with db.tx() as tx:
        await tx.execute(
            "INSERT INTO job_runs(job, period, user_id, done_at, claimed_by, claimed_until) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (job, period, who, iso(now), token, iso(until)))
        if tx.rowcount > 0:
            return JobClaim(job, period, who, token, repeat=False)
        await tx.execute(
            "UPDATE job_runs SET claimed_by = ?, claimed_until = ?, done_at = ? "
            f"WHERE {_KEY} AND claimed_until IS NOT NULL AND claimed_until <= ?",
            (token, iso(until), iso(now), job, period, who, iso(now)))
        if tx.rowcount > 0:
            return JobClaim(job, period, who, token, repeat=True)
    return None


async def finish(db: Backend, c: JobClaim, now: datetime) -> None:
    """Sent (or settled for good): done for this period, whoever holds the claim by now."""
    await db.execute(f"UPDATE job_runs SET claimed_by = NULL, claimed_until = NULL, "
                     f"done_at = ? WHERE {_KEY}", (iso(now), c.job, c.period, c.who))


async def give_back(db: Backend, c: JobClaim) -> None:
    """Not sent, for sure: a later scan sends it (as new, not as a possible repeat)."""
    await db.execute(f"DELETE FROM job_runs WHERE {_KEY} AND claimed_by = ?",
                     (c.job, c.period, c.who, c.token))


async def expire_all(db: Backend, now: datetime) -> int:
    """At start-up of the only instance (SQLite's file lease): every claim was made by a
    process that has stopped, so each is taken over at once, not when it runs out."""
    async with db.tx() as tx:
        await tx.execute("UPDATE job_runs SET claimed_until = ? "
                         "WHERE claimed_until IS NOT NULL AND claimed_until > ?",
                         (iso(now), iso(now)))
        return tx.rowcount
