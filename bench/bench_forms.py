"""Simulated managers filling whole 工作日志 forms through the real Telegram channel, against the
loopback fake Bot API, versus a bare python-telegram-bot echo bot on the same fake API.

    .venv/bin/python -m bench.bench_forms [--users 1,50,200] [--quick] [--json out.json]

Each bot runs in its own subprocess (the product exactly as `taiqu-bot run`, or with
``TelegramChannel(..., rate_limiter=False)``, or ``tests.fakebotapi.build_echo_app``); this
process runs the fake Bot API and the simulated users. A step's latency is measured inside the
fake: from the user's update being queued to the bot's reply for that step arriving. Prints
markdown tables (see BENCHMARKS.md); nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakebotapi import DEFAULT_TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
TEAM = "城东供电所"
AREAS = ["3号台区", "5号台区"]
FIRST_CHAT = 100_000  # simulated user i talks in private chat FIRST_CHAT + i
WARM_CHAT = FIRST_CHAT - 1  # one warm-up form before the measured window
STEP_NAMES = ("1 intent", "2 time", "3 content", "4 problems", "5 photos", "6 location",
              "7 save")


def form_steps(marker: str) -> list[tuple[str, str]]:
    """(what the manager types, what the bot's reply to it must contain), as in the product."""
    return [
        ("记录巡视 3号台区", "什么时候做的"),
        ("现在", "做了什么"),
        (f"{marker} 2号杆拉线松动，已紧固", "发现了什么问题"),
        ("跳过", "有现场照片吗"),
        ("跳过", "需要打卡位置吗"),
        ("跳过", marker),  # the summary shows the content back
        ("保存", "已保存工作日志"),
    ]


# --- the fake, instrumented -------------------------------------------------------------------
class Wire:
    """Hooks the fake's per-token state: every bot message is stamped when it arrives, and the
    one simulated user waiting in that chat is woken (O(1); FakeBot.wait_for wakes every waiter,
    which at 200 users would make the harness the bottleneck)."""

    def __init__(self, fake: FakeBotAPI) -> None:
        self.bot = fake.bot()
        self.ready = asyncio.Event()
        self.first_poll = 0.0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        store = self.bot._store
        get_updates = self.bot.m_getUpdates

        def stamped(chat: Any, rec: dict[str, Any]) -> dict[str, Any]:
            rec["t"] = time.perf_counter()
            fut = self._waiting.pop(chat.id, None)
            if fut is not None and not fut.done():
                fut.set_result(rec)
            return store(chat, rec)

        async def polled(params: dict[str, Any]) -> Any:
            if not self.ready.is_set():
                self.first_poll = time.perf_counter()
                self.ready.set()
            return await get_updates(params)

        self.bot._store = stamped  # type: ignore[method-assign]
        self.bot.m_getUpdates = polled  # type: ignore[method-assign]

    def send(self, chat_id: int, text: str) -> tuple[float, asyncio.Future[dict[str, Any]]]:
        """Queue a user's text; returns (queued at, future of the bot's next message there)."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[chat_id] = fut
        t0 = time.perf_counter()
        self.bot.user_sends(chat_id, text, first_name=f"经理{chat_id - FIRST_CHAT}")
        return t0, fut

    async def say(self, chat_id: int, text: str, timeout: float) -> tuple[float, dict[str, Any]]:
        t0, fut = self.send(chat_id, text)
        try:
            rec = await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting.pop(chat_id, None)
        return rec["t"] - t0, rec

    def messages(self, chat_id: int) -> int:
        return len(self.bot.chat(chat_id).sent)


# --- bot subprocesses ---------------------------------------------------------------------------
def bot_env(fake: FakeBotAPI, db_path: Path, database_url: str | None = None
            ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env.update(TAIQU_TELEGRAM_TOKEN=DEFAULT_TOKEN, TAIQU_TELEGRAM_BASE_URL=fake.base_url,
               TAIQU_TELEGRAM_BASE_FILE_URL=fake.base_file_url, TAIQU_DB_PATH=str(db_path),
               PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost")
    if database_url:
        env["TAIQU_DATABASE_URL"] = database_url
    return env


def taiqu_bot_cmd() -> list[str]:
    script = Path(PY).parent / "taiqu-bot"
    return [str(script), "run"] if script.exists() else [PY, "-m", "bot", "run"]


BOTS: dict[str, tuple[str, list[str]]] = {
    # key: (label, argv)
    "taiqu": ("taiqu, as deployed (AIORateLimiter)", [PY, "-m", "bot", "run"]),
    "taiqu-nolimit": ("taiqu, rate_limiter=False",
                      [PY, "-m", "bench.serve", "taiqu", "--no-rate-limiter"]),
    "echo": ("bare PTB echo (build_echo_app)", [PY, "-m", "bench.serve", "echo"]),
    "echo-limit": ("bare PTB echo + AIORateLimiter",
                   [PY, "-m", "bench.serve", "echo", "--rate-limiter"]),
    # --same-transport: the echo bot on taiqu's Bot API transport (AiohttpRequest) instead of
    # PTB's default httpx one, to tell the transport's share from the core's.
    "echo-aiohttp": ("bare PTB echo on taiqu's transport (AiohttpRequest)",
                     [PY, "-m", "bench.serve", "echo", "--aiohttp"]),
    # --baseline DIR: the same as taiqu-nolimit, from another checkout (e.g. `git archive`
    # of main), so that before and after are measured side by side in one run.
    "taiqu-baseline": ("taiqu at the --baseline checkout, rate_limiter=False",
                       [PY, "-m", "bench.serve", "taiqu", "--no-rate-limiter"]),
}
BASELINE: Path | None = None  # --baseline
SAME_TRANSPORT = False  # --same-transport


class BotProcess:
    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.argv, self.env, self.workdir = argv, env, workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0

    async def start(self, wire: Wire | None, timeout: float = 30.0) -> None:
        """Spawn; with a wire, return once the bot polls (its start-up is over)."""
        log = (self.workdir / "bot.log").open("ab")
        self.spawned_at = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
        log.close()
        if wire is None:
            return
        ready = asyncio.ensure_future(wire.ready.wait())
        died = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({ready, died}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in (ready, died):
            task.cancel()
        if not wire.ready.is_set():
            raise RuntimeError(f"{self.argv} did not start polling:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / "bot.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def memory_kb(self) -> dict[str, int]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


async def seed_db(path: Path | None, users: int, database_url: str | None = None) -> None:
    """Registered managers for chats FIRST_CHAT.. (+ the warm-up chat), through invites, in
    the SQLite file at `path` or the PostgreSQL database at `database_url`."""
    from bot.config import load_settings
    from bot.models import Role
    from bot.services import Services

    where = {"database_url": database_url} if database_url else {"db_path": path}
    services = await Services.open(load_settings(**where))
    try:
        now = datetime.now(UTC)
        for chat_id in [WARM_CHAT, *range(FIRST_CHAT, FIRST_CHAT + users)]:
            name = f"经理{chat_id - FIRST_CHAT}"
            invite = await services.people.create_invite(
                role=Role.MANAGER, team=TEAM, areas=AREAS, name=name, now=now,
                ttl=timedelta(days=1))
            await services.people.redeem_invite(invite.code, channel="telegram",
                                                external_id=str(chat_id), fallback_name=name,
                                                now=now)
    finally:
        await services.close()


# --- one load run -------------------------------------------------------------------------------
@dataclass
class Run:
    bot: str
    users: int
    forms_per_user: int
    tag: str
    samples: list[list[float]] = field(default_factory=lambda: [[] for _ in STEP_NAMES])
    wall: float = 0.0
    forms_done: int = 0
    bad_replies: int = 0
    timeouts: int = 0
    extra_messages: int = 0
    bot_cpu: float = 0.0
    harness_cpu: float = 0.0
    rss_kb: dict[str, int] = field(default_factory=dict)
    db_rows: int | None = None
    lost: int | None = None
    duplicated: int | None = None
    unconfirmed: int | None = None
    log_lines: int = 0
    other_load: float = 0.0  # cores busy with neither the bot nor this harness (noise)
    db_cpu: float = 0.0  # CPU seconds of the PostgreSQL server during the run (0: SQLite)

    @property
    def steps(self) -> int:
        return sum(len(s) for s in self.samples)

    @property
    def all_samples(self) -> list[float]:
        return [x for s in self.samples for x in s]


async def drive_users(wire: Wire, run: Run, users: int, forms: int, tag: str, is_form: bool,
                      step_timeout: float, done_markers: set[str]) -> None:
    """Every simulated user fills `forms` forms, each step sent when the last reply came."""

    async def user(i: int) -> None:
        chat_id = FIRST_CHAT + i
        for k in range(forms):
            marker = f"BENCH-{tag}-u{i:03d}-f{k:02d}"
            rec: dict[str, Any] = {}
            for j, (text, expect) in enumerate(form_steps(marker)):
                try:
                    latency, rec = await wire.say(chat_id, text, step_timeout)
                except TimeoutError:
                    run.timeouts += 1
                    return
                run.samples[j].append(latency)
                ok = expect in rec["text"] if is_form else rec["text"] == text
                run.bad_replies += not ok
            if not is_form or "已保存工作日志" in rec["text"]:
                run.forms_done += 1
                done_markers.add(marker)

    await asyncio.gather(*(user(i) for i in range(users)))


async def warm_up(wire: Wire, tag: str, is_form: bool) -> None:
    for text, expect in form_steps(f"BENCH-{tag}-warmup"):
        _, rec = await wire.say(WARM_CHAT, text, 60)
        if is_form and expect not in rec["text"]:
            raise RuntimeError(f"warm-up: {text!r} got {rec['text']!r}")


async def saved_worklogs(db: Path, database_url: str | None, tag: str) -> tuple[int, list[str]]:
    """(rows in worklogs, the markers this run saved) from SQLite or PostgreSQL."""
    count = "SELECT count(*) FROM worklogs"
    like = "SELECT content FROM worklogs WHERE content LIKE "
    if database_url:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            rows = int(await conn.fetchval(count))
            contents = [r[0] for r in await conn.fetch(like + "$1", f"BENCH-{tag}-u%")]
        finally:
            await conn.close()
    else:
        con = sqlite3.connect(db)
        try:
            rows = con.execute(count).fetchone()[0]
            contents = [r[0] for r in con.execute(like + "?", (f"BENCH-{tag}-u%",))]
        finally:
            con.close()
    return rows, [c.split(" ", 1)[0] for c in contents]


def check_saved(run: Run, rows: int, saved: list[str], done_markers: set[str]) -> None:
    run.db_rows = rows
    run.duplicated = len(saved) - len(set(saved))
    run.lost = len(done_markers - set(saved))
    run.unconfirmed = len(set(saved) - done_markers)  # saved, but the user never saw it


async def load_run(bot: str, users: int, forms: int, tag: str, template: Path | None,
                   step_timeout: float, database_url: str | None = None,
                   db_cpu_seconds: Callable[[], float] | None = None,
                   settings: dict[str, str] | None = None) -> Run:
    """One run; the store is a copy of the SQLite `template`, or the PostgreSQL database at
    `database_url` (already seeded), whose server's CPU `db_cpu_seconds` reads. `settings`:
    TAIQU_ variables for the bot (e.g. {"TAIQU_SQLITE_STEP_SYNCHRONOUS": "NORMAL"})."""
    db_cpu = db_cpu_seconds or (lambda: 0.0)
    run = Run(bot, users, forms, tag)
    is_form = bot.startswith("taiqu")
    workdir = Path(tempfile.mkdtemp(prefix=f"taiqu-bench-{bot}-"))
    db = workdir / "taiqu.db"
    if template is not None and database_url is None:
        shutil.copy(template, db)
    done_markers: set[str] = set()
    try:
        async with FakeBotAPI() as fake:
            wire = Wire(fake)
            env = bot_env(fake, db, database_url) | (settings or {})
            if bot == "taiqu-baseline":
                assert BASELINE is not None
                env["PYTHONPATH"] = str(BASELINE)
            proc = BotProcess(BOTS[bot][1], env, workdir)
            await proc.start(wire)
            try:
                await warm_up(wire, tag, is_form)
                cpu0, harness0, busy0 = proc.cpu_seconds(), time.process_time(), busy_seconds()
                db0 = db_cpu()
                t0 = time.perf_counter()
                await drive_users(wire, run, users, forms, tag, is_form, step_timeout,
                                  done_markers)
                run.wall = time.perf_counter() - t0
                run.bot_cpu = proc.cpu_seconds() - cpu0
                run.harness_cpu = time.process_time() - harness0
                run.db_cpu = db_cpu() - db0
                other = (busy_seconds() - busy0 - run.bot_cpu - run.harness_cpu
                         - run.db_cpu)
                run.other_load = max(0.0, other) / run.wall
                run.rss_kb = proc.memory_kb()
                await asyncio.sleep(0.2)  # anything sent after the last expected reply
                expected = {FIRST_CHAT + i: forms * len(STEP_NAMES) for i in range(users)}
                run.extra_messages = sum(max(0, wire.messages(c) - n)
                                         for c, n in expected.items())
            finally:
                code = await proc.stop()
                if code not in (0, None, -signal.SIGTERM):
                    print(f"  ! {bot} exited with {code}:\n{proc.log_tail()}", file=sys.stderr)
                with contextlib.suppress(OSError):
                    run.log_lines = len((workdir / "bot.log").read_bytes().splitlines())
        if is_form:
            check_saved(run, *await saved_worklogs(db, database_url, tag), done_markers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return run


# --- start-up, imports, memory ------------------------------------------------------------------
async def startup_once(argv: list[str], template: Path | None) -> dict[str, float]:
    """Spawn with one update already waiting: seconds to the first poll and to the first reply."""
    workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-start-"))
    db = workdir / "taiqu.db"
    if template is not None:
        shutil.copy(template, db)
    try:
        async with FakeBotAPI() as fake:
            wire = Wire(fake)
            _, fut = wire.send(FIRST_CHAT, "记录巡视 3号台区")
            proc = BotProcess(argv, bot_env(fake, db), workdir)
            await proc.start(wire)
            try:
                rec = await asyncio.wait_for(fut, 30)
            finally:
                await proc.stop()
            return {"ready": wire.first_poll - proc.spawned_at,
                    "first_reply": rec["t"] - proc.spawned_at}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def startup_phases(template: Path, n: int) -> dict[str, float]:
    """Median seconds of each start-up phase (bench.startup_phases in fresh interpreters)."""
    samples: list[dict[str, float]] = []
    for _ in range(n):
        workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-phases-"))
        shutil.copy(template, workdir / "taiqu.db")
        try:
            async with FakeBotAPI() as fake:
                spawned = time.time()
                proc = await asyncio.create_subprocess_exec(
                    PY, "-m", "bench.startup_phases", env=bot_env(fake, workdir / "taiqu.db"),
                    cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 60)
            if proc.returncode != 0:
                raise RuntimeError(f"bench.startup_phases failed:\n{err.decode(errors='replace')}")
            data = json.loads(out.decode().strip().splitlines()[-1])
            samples.append({"interpreter start-up": data["t0_wall"] - spawned, **data["phases"]})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def python_noop_seconds(n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_profile(module: str, n: int) -> dict[str, Any]:
    """Median wall time of `python -c "import M"` (minus `python -c pass`), the cumulative
    -X importtime of M, and the heaviest modules under it."""
    walls, cumulative = [], []
    last: list[tuple[int, int, str]] = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = subprocess.run([PY, "-X", "importtime", "-c", f"import {module}"], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        last = [(int(m[2]), len(m[3]) // 2, m[4]) for m in _IMPORTTIME.finditer(out.stderr)]
        cumulative.append(sum(us for us, level, _ in last if level == 0) / 1e6)
    # Third-party packages and our own modules, by the time their first import took.
    roots: dict[str, int] = {}
    for us, _, name in last:
        root = name if name.startswith("bot.") else name.split(".")[0]
        if root in sys.stdlib_module_names or root.startswith("_"):
            continue
        if name == root or name.startswith("bot."):
            roots[root] = max(roots.get(root, 0), us)
    heavy = sorted(roots.items(), key=lambda kv: -kv[1])[:8]
    return {"module": module, "wall": statistics.median(walls),
            "importtime": statistics.median(cumulative),
            "heaviest": [(name, us / 1e6) for name, us in heavy]}


def lazily_loaded() -> dict[str, bool]:
    """Which heavy libraries a plain `import bot.cli, bot.channels.telegram` pulls in."""
    libs = ["dateparser", "chinese_calendar", "telegram", "pydantic", "aiosqlite"]
    code = ("import sys, bot.cli, bot.channels.telegram, bot.assistant; "
            f"print(' '.join(m for m in {libs!r} if m in sys.modules))")
    out = subprocess.run([PY, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = set(out.stdout.split())
    return {lib: lib in loaded for lib in libs}


async def idle_memory(argv: list[str], template: Path | None, settle: float) -> dict[str, int]:
    workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-rss-"))
    db = workdir / "taiqu.db"
    if template is not None:
        shutil.copy(template, db)
    try:
        async with FakeBotAPI() as fake:
            wire = Wire(fake)
            proc = BotProcess(argv, bot_env(fake, db), workdir)
            await proc.start(wire)
            try:
                await asyncio.sleep(settle)
                return proc.memory_kb()
            finally:
                await proc.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- reporting ------------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def ms(x: float) -> str:
    return f"{x * 1000:.1f}" if x < 10 else f"{x * 1000:.0f}"


@dataclass
class Pooled:
    bot: str
    users: int
    runs: list[Run]

    @property
    def samples(self) -> list[float]:
        return [x for r in self.runs for x in r.all_samples]

    def p(self, q: float) -> float:
        return pct(self.samples, q)

    @property
    def forms_per_s(self) -> float:
        return sum(r.forms_done for r in self.runs) / sum(r.wall for r in self.runs)

    @property
    def steps_per_s(self) -> float:
        return sum(r.steps for r in self.runs) / sum(r.wall for r in self.runs)

    @property
    def cpu_per_step_ms(self) -> float:
        return 1000 * sum(r.bot_cpu for r in self.runs) / max(1, sum(r.steps for r in self.runs))

    @property
    def other_load(self) -> float:
        return sum(r.other_load * r.wall for r in self.runs) / sum(r.wall for r in self.runs)

    @property
    def harness_load(self) -> float:
        return sum(r.harness_cpu for r in self.runs) / sum(r.wall for r in self.runs)

    def total(self, name: str) -> int | None:
        values = [getattr(r, name) for r in self.runs]
        return None if any(v is None for v in values) else sum(values)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def load_table(pools: list[Pooled]) -> str:
    rows = []
    for p in pools:
        form = p.bot.startswith("taiqu")
        checks = (f"{p.total('db_rows')} / {p.total('lost')} / {p.total('duplicated')} / "
                  f"{p.total('unconfirmed')}" if form else "n/a")
        bad = "/".join(str(sum(getattr(r, k) for r in p.runs))
                       for k in ("bad_replies", "timeouts", "extra_messages"))
        logs = sum(r.log_lines for r in p.runs)
        rows.append([p.bot, str(p.users), str(len(p.runs)), str(len(p.samples)),
                     ms(p.p(0.5)), ms(p.p(0.99)), ms(max(p.samples, default=0.0)),
                     f"{p.steps_per_s:.0f}", f"{p.forms_per_s:.1f}" if form else "-",
                     f"{p.cpu_per_step_ms:.2f}", f"{p.harness_load:.2f}", f"{p.other_load:.2f}",
                     str(sum(r.forms_done for r in p.runs)) if form else "-", checks, bad,
                     str(logs),
                     f"{max(r.rss_kb.get('VmRSS', 0) for r in p.runs) / 1024:.0f}"])
    return table(["bot", "users", "runs", "steps", "p50 ms", "p99 ms", "max ms", "steps/s",
                  "forms/s", "bot CPU ms/step", "harness cores", "other load cores",
                  "forms done", "DB rows (incl. 1 warm-up/run) / lost / dup / unconfirmed",
                  "bad/timeout/extra replies",
                  "bot log lines", "RSS after MB"], rows)


def ratio_table(pools: dict[tuple[str, int], Pooled], users: list[int]) -> str:
    rows = []
    compared = (("taiqu-nolimit", "echo", ""), ("taiqu-baseline", "echo", " (baseline)"),
                ("taiqu-nolimit", "echo-aiohttp", " (vs echo-aiohttp)"))
    for n, bot, ref, note in ((n, *p) for n in users for p in compared):
        ours, echo = pools.get((bot, n)), pools.get((ref, n))
        if ours is None or echo is None:
            continue
        r50, r99 = ours.p(0.5) / echo.p(0.5), ours.p(0.99) / echo.p(0.99)
        pairs = list(zip(ours.runs, echo.runs, strict=False))  # the same round, back to back
        per_round = ", ".join(f"{pct(a.all_samples, 0.5) / pct(b.all_samples, 0.5):.2f}"
                              for a, b in pairs)
        rows.append([f"{n}{note}",
                     f"{ms(ours.p(0.5))} / {ms(echo.p(0.5))}",
                     f"{r50:.2f}x " + ("ok" if r50 <= 1.5 else "**missed**"), per_round,
                     f"{ms(ours.p(0.99))} / {ms(echo.p(0.99))}",
                     f"{r99:.2f}x " + ("ok" if r99 <= 3 else "**missed**"),
                     f"{ours.steps_per_s / echo.steps_per_s:.2f}x",
                     f"{ours.cpu_per_step_ms / echo.cpu_per_step_ms:.2f}x"])
    return table(["users", "p50 ours / echo ms", "p50 ratio (goal <= 1.5x)",
                  "p50 ratio per round", "p99 ours / echo ms", "p99 ratio (goal <= 3x)",
                  "steps/s ratio", "bot CPU/step ratio"], rows)


def step_table(pool: Pooled) -> str:
    rows = []
    for j, name in enumerate(STEP_NAMES):
        xs = [x for r in pool.runs for x in r.samples[j]]
        rows.append([name, ms(pct(xs, 0.5)), ms(pct(xs, 0.99))])
    return table(["step", "p50 ms", "p99 ms"], rows)


def machine() -> dict[str, str]:
    import aiosqlite
    import telegram

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": model,
            "cores": str(os.cpu_count()), "python": platform.python_version(),
            "python-telegram-bot": telegram.__version__,
            "aiosqlite": getattr(aiosqlite, "__version__", "?"),
            "sqlite": sqlite3.sqlite_version, "kernel": platform.release()}


# --- main -----------------------------------------------------------------------------------------
def plan(users: list[int], quick: bool) -> list[tuple[str, int, int]]:
    """(bot, users, forms per user) in run order; unlimited pairs run 3 times, order swapped."""
    def forms(n: int, limited: bool) -> int:
        if limited:
            return (2 if quick else 5) if n == 1 else 1
        if quick:
            return 10 if n == 1 else 2 if n <= 50 else 1
        return 20 if n == 1 else 4 if n <= 50 else 2

    steps: list[tuple[str, int, int]] = []
    ours = ["taiqu-nolimit", *(["taiqu-baseline"] if BASELINE is not None else []),
            *(["echo-aiohttp"] if SAME_TRANSPORT else [])]
    for n in users:
        f = forms(n, False)
        steps += [("echo", n, f), *((b, n, f) for b in ours)]
        if not quick:
            steps += [*((b, n, f) for b in reversed(ours)), ("echo", n, f), ("echo", n, f),
                      *((b, n, f) for b in ours)]
    for n in users:
        if quick and n > 50:
            continue  # 200 users x 7 steps at 30 msg/s is ~50 s per bot
        steps += [("echo-limit", n, forms(n, True)), ("taiqu", n, forms(n, True))]
    return steps


async def start_up_and_memory(args: argparse.Namespace, template: Path,
                              results: dict[str, Any], log: Any) -> None:
    """Start-up, imports and idle memory (left out with --load-only)."""
    reps = 3 if args.quick else 5
    noop = python_noop_seconds(reps)
    starts: dict[str, list[dict[str, float]]] = {"taiqu": [], "taiqu-empty": [], "echo": []}
    for _ in range(reps):  # alternate the bots
        starts["taiqu"].append(await startup_once([PY, "-m", "bot", "run"], template))
        starts["echo"].append(await startup_once(BOTS["echo"][1], None))
        if not args.quick:
            starts["taiqu-empty"].append(await startup_once([PY, "-m", "bot", "run"], None))
    results["startup"] = {k: {m: statistics.median(s[m] for s in v)
                              for m in ("ready", "first_reply")} | {
                                  "min_first_reply": min(s["first_reply"] for s in v)}
                          for k, v in starts.items() if v}
    results["startup"]["python_noop"] = noop
    results["phases"] = await startup_phases(template, reps)
    results["imports"] = [import_profile(m, reps) for m in
                          ("bot.cli", "bot.channels.telegram", "telegram.ext")]
    results["lazy"] = lazily_loaded()
    results["idle_rss_kb"] = {
        "taiqu-bot run": await idle_memory(taiqu_bot_cmd(), template, args.settle),
        "echo": await idle_memory(BOTS["echo"][1], None, args.settle)}
    results["settle"] = args.settle
    log(json.dumps({k: results[k] for k in ("startup", "lazy", "idle_rss_kb")}, indent=1))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    users = sorted({int(u) for u in args.users.split(",")})
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "users": users, "quick": args.quick}
    base = Path(tempfile.mkdtemp(prefix="taiqu-bench-seed-"))
    templates: dict[int, Path] = {}
    try:
        for n in [1, *users]:
            if n not in templates:
                templates[n] = base / f"seed-{n}.db"
                await seed_db(templates[n], n)

        log = print if args.verbose else (lambda *a, **k: None)
        if not args.load_only:
            await start_up_and_memory(args, templates[1], results, log)

        runs: list[Run] = []
        for i, (bot, n, forms) in enumerate(plan(users, args.quick)):
            tag = f"r{i:02d}"
            t0 = time.perf_counter()
            run = await load_run(bot, n, forms, tag, templates[n] if bot.startswith("taiqu")
                                 else None, args.step_timeout)
            runs.append(run)
            print(f"  {bot:14} users={n:<4} forms/user={forms:<3} steps={run.steps:<5} "
                  f"p50={ms(pct(run.all_samples, 0.5))}ms p99={ms(pct(run.all_samples, 0.99))}ms "
                  f"wall={run.wall:.1f}s other-load={run.other_load:.2f} "
                  f"(run {time.perf_counter() - t0:.1f}s)", file=sys.stderr)
        pools: dict[tuple[str, int], Pooled] = {}
        for run in runs:
            pools.setdefault((run.bot, run.users), Pooled(run.bot, run.users, [])).runs.append(run)
        results["pools"] = pools
        results["elapsed"] = time.perf_counter() - started
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    m = results["machine"]
    out.append("### Machine\n")
    out.append(table(["date", "CPU", "cores", "Python", "PTB", "aiosqlite", "SQLite", "kernel"],
                     [[m["date"], m["cpu"], m["cores"], m["python"], m["python-telegram-bot"],
                       m["aiosqlite"], m["sqlite"], m["kernel"]]]))
    out.append("\nBots: " + "; ".join(f"`{k}` = {label}" for k, (label, _) in BOTS.items())
               + ". Latency = user's update queued in the fake -> the bot's reply arriving "
               "there; one simulated user = one chat, next step sent as soon as the reply "
               "arrives (no think time).")
    pools: dict[tuple[str, int], Pooled] = results["pools"]
    users = results["users"]
    unlimited = [pools[(b, n)] for b in ("echo", "echo-aiohttp", "taiqu-nolimit",
                                         "taiqu-baseline")
                 for n in users if (b, n) in pools]
    limited = [pools[(b, n)] for b in ("echo-limit", "taiqu") for n in users if (b, n) in pools]
    out.append("\n### Per-step latency and throughput, no rate limiter\n")
    out.append(load_table(sorted(unlimited, key=lambda p: (p.users, p.bot))))
    out.append("\n### Goals: ours (rate_limiter=False) vs the bare echo bot\n")
    out.append(ratio_table(pools, users))
    out.append("\n### As deployed: AIORateLimiter (30 msg/s overall), echo with the same limiter\n")
    out.append(load_table(sorted(limited, key=lambda p: (p.users, p.bot))))
    for n in (users[0], users[-1]):
        if ("taiqu-nolimit", n) in pools:
            out.append(f"\n### Per step, taiqu rate_limiter=False, {n} user(s)\n")
            out.append(step_table(pools[("taiqu-nolimit", n)]))
    if "startup" in results:
        out += start_up_sections(results)
    out.append(f"\nTotal benchmark time {results['elapsed']:.0f} s.")
    return "\n".join(out) + "\n"


def start_up_sections(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    s = results["startup"]
    out.append("\n### Start-up (median of fresh subprocesses; one update already queued)\n")
    names = {"taiqu": "`python -m bot run` (taiqu, seeded database)",
             "taiqu-empty": "`python -m bot run`, new empty database (migrations)",
             "echo": "bare PTB echo (`bench.serve echo`; its module also imports aiohttp)"}
    rows = [[label, ms(s[k]["ready"]), ms(s[k]["first_reply"]), ms(s[k]["min_first_reply"])]
            for k, label in names.items() if k in s]
    rows.append(["`python -c pass`", "-", ms(s["python_noop"]), "-"])
    out.append(table(["process", "spawn -> first getUpdates ms", "spawn -> first reply ms",
                      "min first reply ms"], rows))
    out.append("\nPhases of `taiqu-bot run` start-up (median, `bench/startup_phases.py`):\n")
    phases = results["phases"]
    out.append(table(["phase", "ms"], [[k, ms(v)] for k, v in phases.items()]
                     + [["total", ms(sum(phases.values()))]]))
    out.append("\n### Imports (median; `-X importtime` cumulative, and wall of `python -c`)\n")
    rows = []
    for imp in results["imports"]:
        heavy = ", ".join(f"{n} {t * 1000:.0f}" for n, t in imp["heaviest"][:6])
        rows.append([f"`import {imp['module']}`", ms(imp["importtime"]), ms(imp["wall"]), heavy])
    out.append(table(["import", "importtime ms", "wall ms (incl. interpreter)",
                      "heaviest first imports (ms, nested)"], rows))
    lazy = results["lazy"]
    out.append("\nLoaded by `import bot.cli, bot.channels.telegram, bot.assistant`: "
               + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in lazy.items()))
    out.append(f"\n### Idle memory (VmRSS {results['settle']:g} s after start-up, idle)\n")
    out.append(table(["process", "VmRSS MB", "VmHWM MB"],
                     [[k, f"{v['VmRSS'] / 1024:.1f}", f"{v['VmHWM'] / 1024:.1f}"]
                      for k, v in results["idle_rss_kb"].items()]))
    return out


def to_json(results: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in results.items() if k != "pools"}
    data["runs"] = [
        {"bot": p.bot, "users": p.users, "runs": len(p.runs), "steps": len(p.samples),
         "p50_s": p.p(0.5), "p99_s": p.p(0.99), "forms_per_s": p.forms_per_s,
         "steps_per_s": p.steps_per_s, "bot_cpu_ms_per_step": p.cpu_per_step_ms,
         "forms_done": sum(r.forms_done for r in p.runs), "db_rows": p.total("db_rows"),
         "lost": p.total("lost"), "duplicated": p.total("duplicated"),
         "unconfirmed": p.total("unconfirmed"),
         "bad_replies": sum(r.bad_replies for r in p.runs),
         "timeouts": sum(r.timeouts for r in p.runs),
         "extra_messages": sum(r.extra_messages for r in p.runs),
         "bot_log_lines": sum(r.log_lines for r in p.runs), "other_load_cores": p.other_load,
         "per_run": [{"p50_s": pct(r.all_samples, 0.5), "p99_s": pct(r.all_samples, 0.99),
                      "wall_s": r.wall, "bot_cpu_s": r.bot_cpu, "other_load": r.other_load}
                     for r in p.runs]}
        for p in results["pools"].values()]
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_forms", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="1,50,200",
                   help="concurrent users per run (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="fewer forms and repeats (~1 minute)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--settle", type=float, default=None,
                   help="idle seconds before reading RSS (default 3, --quick 1.5)")
    p.add_argument("--step-timeout", type=float, default=120.0)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--load-only", action="store_true",
                   help="only the load runs (no start-up, imports or idle memory)")
    p.add_argument("--same-transport", action="store_true",
                   help="also run the echo bot on taiqu's Bot API transport (echo-aiohttp)")
    p.add_argument("--baseline", type=Path,
                   help="also run taiqu from this checkout (e.g. `git archive main`), side "
                        "by side with this one: before and after in one run")
    args = p.parse_args(argv)
    global BASELINE, SAME_TRANSPORT
    BASELINE = args.baseline.resolve() if args.baseline else None
    SAME_TRANSPORT = args.same_transport
    if args.settle is None:
        args.settle = 1.5 if args.quick else 3.0
    results = asyncio.run(main_async(args))
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(to_json(results), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

