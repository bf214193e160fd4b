"""A team's WeCom group robot (群机器人): the Monday summary of the team's figures.

Anyone in the group reads it, so it carries team figures and staff names only: never a
customer's name, phone, account number or address (bot.features.reports.text.team_summary)."""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx

from bot.channels.wecom.api import split_text
from bot.features.reports.figures import Scope, compute
from bot.features.reports.ranges import weekly_report_due
from bot.features.reports.text import team_summary
from bot.reminders import jobs_done
from bot.router import PushFn, Router
from bot.services import Services
from bot.storage.db import iso

log = logging.getLogger(__name__)
router = Router("wecom_robot")
JOB = "team_robot"  # job_runs: one row per team (in user_id) and week
ROBOT_PER_MINUTE = 20  # WeCom's limit per robot


class RobotError(ValueError):
    pass


def check_url(url: str) -> str:
    """A robot's webhook URL as the group's 群机器人 settings show it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc \
            or not parts.path.endswith("/cgi-bin/webhook/send") \
            or not parse_qs(parts.query).get("key"):
        raise RobotError("not a WeCom group robot URL (…/cgi-bin/webhook/send?key=…); copy "
                         "it from the group's 群机器人 settings")
    return url.strip()


async def set_robot(services: Services, team: str, url: str | None) -> bool:
    """Set (or with None remove) a team's robot; False if there is no such team."""
    row = await services.db.fetchone("SELECT id FROM teams WHERE name = ?", (team,))
    if row is None:
        return False
    if url is None:
        await services.db.execute("DELETE FROM team_robots WHERE team_id = ?", (row[0],))
    else:
        await services.db.execute(
            "INSERT INTO team_robots(team_id, url, set_at) VALUES (?, ?, ?) ON CONFLICT(team_id) "
            "DO UPDATE SET url = excluded.url, set_at = excluded.set_at",
            (row[0], check_url(url), iso(services.clock.now())))
    return True


class RobotSender:
    """Posts to robots, at most ROBOT_PER_MINUTE a minute to each (then it waits)."""

    def __init__(self, http: httpx.AsyncClient | None = None,
                 per_minute: int = ROBOT_PER_MINUTE) -> None:
        self._http = http
        self.per_minute = per_minute
        self._sent: dict[str, deque[float]] = {}

    def room(self, url: str, now: float) -> bool:
        times = self._sent.setdefault(url, deque())
        while times and times[0] <= now - 60:
            times.popleft()
        return len(times) < self.per_minute

    async def send(self, url: str, text: str) -> bool:
        """True if the robot took it; False to try again at a later scan."""
        if not self.room(url, time.monotonic()):
            return False
        self._sent[url].append(time.monotonic())
        http = self._http or httpx.AsyncClient(timeout=10)
        try:
            resp = await http.post(url, json={"msgtype": "text", "text": {"content": text}})
            data = resp.json() if resp.status_code == 200 else {"errcode": resp.status_code}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("team robot unreachable: %s", type(exc).__name__)
            return False
        finally:
            if self._http is None:
                await http.aclose()
        if data.get("errcode", -1) != 0:
            log.warning("team robot refused the summary: errcode %s", data.get("errcode"))
            return False
        return True


SENDER = RobotSender()


@router.every_scan
async def team_robot_job(services: Services, push: PushFn, now: datetime) -> int:
    """From Monday at TAIQU_WEEKLY_REPORT_TIME, each team with a robot gets the summary of
    the week just ended in its group, once (job_runs), retried at later scans on a fault."""
    robots = await services.db.fetchall(
        "SELECT r.team_id, r.url, t.name FROM team_robots r JOIN teams t ON t.id = r.team_id")
    if not robots:
        return 0
    period = weekly_report_due(services.settings.weekly_report_time, now, services.settings.tz)
    if period is None:
        return 0
    key = period.first.isoformat()
    done = await jobs_done(services, JOB, key)
    sent = 0
    for team_id, url, name in robots:
        if team_id in done:
            continue
        fig = await compute(services.db, Scope(team_id, name), period, now)
        chunks = split_text(team_summary(fig, services.settings.locale))
        if not await _send_parts(services, url, chunks, key, team_id, now):
            continue  # a later scan sends the parts still missing, in order
        await _done(services, JOB, key, team_id, now)
        sent += 1
    return sent


async def _send_parts(services: Services, url: str, chunks: list[str], key: str, team_id: int,
                      now: datetime) -> bool:
    """Send a long summary's messages in order; each one the robot took is recorded, so a
    fault part-way is followed by the rest only (the group reads nothing twice)."""
    done = {r[0] for r in await services.db.fetchall(
        "SELECT job FROM job_runs WHERE job LIKE ? AND period = ? AND user_id = ?",
        (f"{JOB}:%", key, team_id))}
    for i, chunk in enumerate(chunks):
        part = f"{JOB}:{i}"
        if part in done:
            continue
        if not await SENDER.send(url, chunk):
            return False
        await _done(services, part, key, team_id, now)
    return True


async def _done(services: Services, job: str, key: str, team_id: int, now: datetime) -> None:
    await services.db.execute(
        "INSERT INTO job_runs(job, period, user_id, done_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (job, key, team_id, iso(now)))
