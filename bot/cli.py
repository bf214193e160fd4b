"""taiqu-bot: run the channels, chat locally, issue invite codes, export files."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import Settings, SettingsError, load_settings
from bot.models import Role
from bot.private_files import FILE_MODE
from bot.textutil import clean_text

if TYPE_CHECKING:
    from bot.serve import ChannelFactory


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taiqu-bot", description="台区助手 Taiqu Assistant")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="serve every configured channel (Telegram, WeCom) in one process")
    chat = sub.add_parser("chat", help="local terminal chat on the embedded database")
    chat.add_argument("--user", help="sign in as this user (by name)")
    demo = chat.add_mutually_exclusive_group()
    demo.add_argument("--demo", dest="demo", action="store_true", default=None,
                      help="on an empty database, create the demo team without asking")
    demo.add_argument("--no-demo", dest="demo", action="store_false")
    inv = sub.add_parser("invite", help="create a one-time invite code")
    inv.add_argument("--role", required=True, choices=[r.value for r in Role])
    inv.add_argument("--team", required=True)
    inv.add_argument("--areas", default="", help='comma-separated, e.g. "3号台区,5号台区"')
    inv.add_argument("--name", default=None)
    inv.add_argument("--ttl-days", type=int, default=None, help="default TAIQU_INVITE_TTL_DAYS")
    inv.add_argument("--wecom-user", metavar="USERID", default=None,
                     help="bind this WeCom (企业微信) member's UserID at once: no code to type")
    cust = sub.add_parser("customers", help="import / export the special-customer register")
    cust_sub = cust.add_subparsers(dest="action", required=True)
    imp = cust_sub.add_parser("import", help="import a CSV (UTF-8, GBK or UTF-16) or XLSX file")
    imp.add_argument("file", metavar="FILE", help="CSV or XLSX, header in row 1")
    imp.add_argument("--team", required=True)
    imp.add_argument("--create-areas", action="store_true",
                     help="create 台区 the team does not have yet instead of rejecting the row")
    imp.add_argument("--dry-run", action="store_true",
                     help="check the file and report, write nothing")
    exp = cust_sub.add_parser("export", help="export the team's active customers as XLSX")
    exp.add_argument("file", metavar="FILE.xlsx")
    exp.add_argument("--team", required=True)
    exp.add_argument("--full", action="store_true",
                     help="unmasked phones, names and 具体情况 (admin use only)")
    arr = sub.add_parser("arrears", help="import the marketing system's arrears list")
    arr_sub = arr.add_subparsers(dest="action", required=True)
    arr_imp = arr_sub.add_parser(
        "import", help="reconcile the team's arrears with a list (CSV in UTF-8/GBK/UTF-16, "
        "or XLSX): new households added, changed amounts updated, missing ones marked paid")
    arr_imp.add_argument("file", metavar="FILE", help="CSV or XLSX with 户号 户名 台区 欠费金额 "
                         "欠费起始(账期) [是否费控]")
    arr_imp.add_argument("--team", required=True)
    arr_imp.add_argument("--dry-run", action="store_true",
                         help="show what would change (added / updated / paid / unchanged / "
                         "errors), write nothing")
    calp = sub.add_parser("calendar",
                          help="working-day calendar: holidays and 调休 make-up working days")
    cal_sub = calp.add_subparsers(dest="action", required=True)
    for action, help_ in (("add-holiday", "mark DATE as a holiday (a non-working day)"),
                          ("add-workday", "mark DATE as a working day (调休 make-up day)")):
        add = cal_sub.add_parser(action, help=help_)
        add.add_argument("date", metavar="DATE", help="YYYY-MM-DD")
        add.add_argument("--note", default=None, help='e.g. "国庆节" or "国庆调休上班"')
    rm = cal_sub.add_parser("remove", help="remove the admin's setting for DATE")
    rm.add_argument("date", metavar="DATE", help="YYYY-MM-DD")
    ls = cal_sub.add_parser("list", help="list a year's holidays and make-up working days")
    ls.add_argument("year", metavar="YEAR", help="e.g. 2027")
    areas = sub.add_parser("areas", help="a team's 台区 and their kind (repair arrival limits)")
    areas_sub = areas.add_subparsers(dest="action", required=True)
    als = areas_sub.add_parser("list", help="list the team's areas with their kind")
    als.add_argument("--team", required=True)
    kind = areas_sub.add_parser("set-kind", help="set an area's kind: city 45 min, rural 90 min, "
                                "remote 120 min to arrive at a repair (default rural)")
    kind.add_argument("--team", required=True)
    kind.add_argument("area", metavar="AREA", help='e.g. "3号台区"')
    kind.add_argument("kind", choices=("city", "rural", "remote"))
    export = sub.add_parser("export", help="export records as files")
    export_sub = export.add_subparsers(dest="what", required=True)
    logs = export_sub.add_parser(
        "logs", help="the team's work logs as a printable XLSX laid out like the paper form")
    logs.add_argument("--team", required=True)
    logs.add_argument("--from", dest="first", required=True, metavar="DATE", help="YYYY-MM-DD")
    logs.add_argument("--to", dest="last", required=True, metavar="DATE",
                      help="YYYY-MM-DD, included")
    logs.add_argument("file", metavar="FILE.xlsx")
    db = sub.add_parser("db", help="the store: move a SQLite deployment to PostgreSQL")
    db_sub = db.add_subparsers(dest="action", required=True)
    dbc = db_sub.add_parser("copy", help="copy every table of the SQLite file (TAIQU_DB_PATH) "
                            "into PostgreSQL; safe to run again")
    dbc.add_argument("--to", required=True, metavar="postgresql://user@host/db")
    dbc.add_argument("--from", dest="source", type=Path, default=None,
                     help="the SQLite file (default: TAIQU_DB_PATH)")
    from bot.channels.telegram_admin import add_parsers as add_telegram_parsers
    from bot.channels.wecom.admin import add_parsers as add_wecom_parsers
    from bot.features.lineloss.cli import add_parsers as add_lineloss_parsers

    add_telegram_parsers(sub)
    add_wecom_parsers(sub)
    add_lineloss_parsers(sub)
    return p


async def _db_copy(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: copied and counted; 2: no such file, a schema version apart, or a row refused."""
    import asyncpg

    from bot.storage.copy import CopyError, copy_database
    from bot.storage.db import Database
    from bot.storage.pg import PgDatabase

    path = args.source or settings.db_path
    if not path.exists():
        print(f"taiqu-bot db copy: 找不到 / no such file: {path}", file=sys.stderr)
        return 2
    source = await Database(path).connect(migrate_to=0)  # as it is: the copy changes nothing
    try:
        target = PgDatabase(args.to, busy_timeout=settings.db_busy_timeout_seconds)
        version = await source.schema_version()
        await target.connect(migrate_to=version)
        try:
            results = await copy_database(
                source, target, batch_rows=settings.import_batch_rows,
                progress=lambda r: print(f"{r.table}: {r.source_rows} 行 / rows, 新复制 / "
                                         f"copied {r.copied}, 目标共 / in target {r.target_rows}"))
        finally:
            await target.close()
    except (CopyError, asyncpg.PostgresError) as exc:
        print(f"taiqu-bot db copy: 未完成 / not done: {exc}", file=sys.stderr)
        return 2
    finally:
        await source.close()
    print(f"复制完成 / copied: {len(results)} 张表 / tables, 版本 / schema version {version}")
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: written; 2: bad dates, unknown team, or a range that is too long."""
    import re
    from datetime import date

    from bot.features.reports.paper import ExportError, export_team_logs
    from bot.services import Services

    days = []
    for flag, text in (("--from", args.first), ("--to", args.last)):
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            days.append(date.fromisoformat(text))
        except ValueError:
            print(f"taiqu-bot export logs: invalid {flag} date {text!r} (expected YYYY-MM-DD)",
                  file=sys.stderr)
            return 2
    services = await Services.open(settings)
    try:
        done = await export_team_logs(services, args.team.strip(), days[0], days[1], args.file)
    except ExportError as exc:
        print(f"taiqu-bot export logs: {exc}", file=sys.stderr)
        return 2
    finally:
        await services.close()
    print(f"导出完成 / exported: {done.entries} 条工作日志 / log entries, {done.team}, "
          f"{done.period.first.isoformat()} — {done.period.last.isoformat()} → {args.file}")
    return 0


def _line(text: str) -> str:
    """A name typed on the command line, cleaned as chat input is (bot.textutil)."""
    return " ".join(clean_text(text, multiline=False).split())


async def _invite(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import Services

    services = await Services.open(settings)
    try:
        areas = [a.strip() for a in _line(args.areas).replace("，", ",").split(",")
                 if a.strip()]
        ttl = timedelta(days=args.ttl_days or settings.invite_ttl_days)
        name = _line(args.name) or None if args.name else None
        invite = await services.people.create_invite(
            role=Role(args.role), team=_line(args.team), areas=areas, name=name,
            now=services.clock.now(), ttl=ttl)
    finally:
        await services.close()
    if args.wecom_user:
        from bot.channels.wecom.admin import bind_wecom_user

        userid = args.wecom_user.strip()
        error = await bind_wecom_user(settings, invite.code, userid, name)
        if error is not None:
            print(f"taiqu-bot invite: {error}", file=sys.stderr)
            return 2
        print(f"已绑定企业微信成员 / bound WeCom member {userid} "
              f"[{args.role}, {args.team}]: 无需邀请码，打开应用即可使用 / no code needed, "
              "they just open the app")
        return 0
    expires = invite.expires_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
    print(f"邀请码 / invite code for {args.name or '(name from chat)'} "
          f"[{args.role}, {args.team}], valid until {expires} ({settings.timezone}); "
          f"send in Telegram: /start {invite.code}")
    print(invite.code)
    return 0


async def _customers(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: all rows imported; 1: some rows had errors (the rest imported); 2: file error;
    3: interrupted after some batches were written (run again to finish)."""
    from bot.customers_io import (
        CustomersIOError,
        ImportInterrupted,
        export_customers,
        import_customers,
    )
    from bot.services import Services

    services = await Services.open(settings)
    try:
        if args.action == "export":
            exported = await export_customers(services, args.team, args.file, full=args.full)
            privacy = ("完整信息，未脱敏 / full, unmasked" if exported.full else
                       "电话已脱敏，敏感类别客户的姓名和具体情况已隐去 / phones masked, "
                       "sensitive customers' names and details hidden")
            print(f"导出完成 / exported: {exported.rows} 户 → {exported.file}（{privacy}）")
            return 0
        result = await import_customers(services, args.file, args.team,
                                        create_areas=args.create_areas, dry_run=args.dry_run)
    except CustomersIOError as exc:
        print(f"taiqu-bot customers {args.action}: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, ImportInterrupted) else 2
    finally:
        await services.close()
    for err in result.errors:
        print(err)
    if result.error_rows > len(result.errors):
        print(f"……另有 {result.error_rows - len(result.errors)} 行错误未列出 / "
              f"{result.error_rows - len(result.errors)} more rows with errors not listed")
    if result.created_areas:
        print("新建台区 / created areas: " + "、".join(result.created_areas))
    if result.inactive:
        print(f"其中 {result.inactive} 户已停用，更新后仍保持停用 / {result.inactive} updated "
              "records are deactivated and stay deactivated")
    head = ("试运行，未写入 / dry run, nothing written" if result.dry_run
            else "导入完成 / imported")
    print(f"{head}: 新增 {result.inserted}，更新 {result.updated}，错误 {result.error_rows} 行 "
          f"(inserted {result.inserted}, updated {result.updated}, "
          f"rows with errors {result.error_rows}; team {result.team})")
    return 1 if result.error_rows else 0


async def _arrears(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: every row imported; 1: some rows had errors (the rest imported); 2: file error
    or nothing imported; 3: stopped half-way (run the same command again to finish)."""
    from bot.arrears_io import ArrearsImportError, apply_list, discard, stage_list, team_named
    from bot.services import Services
    from bot.tabular import TableError

    services = await Services.open(settings)
    try:
        team_id = await team_named(services.db, args.team)
        staged = await stage_list(services, Path(args.file), team_id, actor="cli")
        for err in staged.errors:
            print(err)
        if staged.error_rows > len(staged.errors):
            print(f"……另有 {staged.error_rows - len(staged.errors)} 行错误未列出 / "
                  f"{staged.error_rows - len(staged.errors)} more rows with errors not listed")
        result = staged
        if args.dry_run or not staged.valid_rows:
            await discard(services.db, staged.import_id)
        else:
            try:
                result = await apply_list(services, staged.import_id)
            except (Exception, KeyboardInterrupt) as exc:  # batches written stay written
                print(f"taiqu-bot arrears import: 导入中断，请再运行一次同样的命令完成 / stopped "
                      f"half-way, run the same command again to finish ({exc})", file=sys.stderr)
                return 3
    except (ArrearsImportError, TableError) as exc:
        print(f"taiqu-bot arrears import: {exc}", file=sys.stderr)
        return 2
    finally:
        await services.close()
    if staged.to_lead:
        print(f"{staged.to_lead} 户所在台区无人负责，交给 {staged.lead} / {staged.to_lead} "
              f"households of areas no manager has go to {staged.lead}")
    if staged.unknown_areas:
        print("班组里没有这些台区 / areas the team does not have: "
              + "、".join(staged.unknown_areas))
    if staged.hand_kept:
        print(f"手工登记、不在清单中的 {staged.hand_kept} 户保持不变 / {staged.hand_kept} "
              "households entered by hand and not listed stay as they are")
    head = ("试运行，未写入 / dry run, nothing written" if args.dry_run
            else "导入完成 / imported" if staged.valid_rows
            else "没有可导入的行 / nothing to import")
    print(f"{head}: 新增 {result.added}，金额变化 {result.updated}，记为已缴费 {result.paid}，"
          f"不变 {result.unchanged}，错误 {staged.error_rows} 行 (added {result.added}, "
          f"updated {result.updated}, paid {result.paid}, unchanged {result.unchanged}, "
          f"rows with errors {staged.error_rows}; team {staged.team})")
    if not staged.valid_rows:
        return 2
    return 1 if staged.error_rows else 0


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.channels.terminal import run_terminal
    from bot.lease import DatabaseLease, LeaseHeld
    from bot.services import Services

    # Beside a running `run`, the chat works but leaves the reminders to it (sending them from
    # here too would repeat them, and mark Telegram users unreachable from the terminal).
    lease = DatabaseLease(settings.db_path)
    try:
        lease.acquire()
    except LeaseHeld:
        print("提示：taiqu-bot run 正在运行，提醒由它发送，本终端不弹出提醒 / note: taiqu-bot run "
              "is serving this database; it sends the reminders, this terminal shows none",
              file=sys.stderr)
    services = await Services.open(settings)
    try:
        # On PostgreSQL the served instances send them: a chat is never one of them.
        reminders = lease.held and settings.database_url is None
        return await run_terminal(services, args.user, args.demo, reminders=reminders)
    finally:
        await services.close()
        lease.release()


def _lease_held(command: str, exc: Exception) -> None:
    print(f"taiqu-bot {command}: 另一个 taiqu-bot 正在使用这个数据库，不能同时运行两个 / "
          f"another taiqu-bot is already serving this database ({exc}); stop it first",
          file=sys.stderr)


async def _run(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Serve every configured channel until SIGINT/SIGTERM (or `stop`, for tests)."""
    from bot.serve import configured

    try:
        factories = configured(settings)
    except SettingsError as exc:
        print(f"taiqu-bot: {exc}", file=sys.stderr)
        return 2
    if not factories:
        print("No channel is configured: set TAIQU_TELEGRAM_TOKEN (Telegram) or the "
              "TAIQU_WECOM_* settings (WeCom) in the environment or .env, or try the local "
              "chat with `taiqu-bot chat`.\n"
              "没有配置任何渠道：请设置 TAIQU_TELEGRAM_TOKEN（Telegram）或 "
              "TAIQU_WECOM_*（企业微信），或先用 `taiqu-bot chat` 在终端试用。",
              file=sys.stderr)
        return 2
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await serve(settings, factories, stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    return await serve(settings, factories, stop)


async def serve(settings: Settings, factories: list[ChannelFactory], stop: asyncio.Event,
                clock: Clock | None = None) -> int:
    """`run` until `stop` is set: the configured channels and the reminder scan, holding the
    SQLite database's lease (a second instance would poll the same bot and send every
    reminder twice). On PostgreSQL several instances may run: one at a time scans."""
    from bot.lease import DatabaseLease, LeaseHeld
    from bot.serve import Runner
    from bot.services import Services

    lease = DatabaseLease(settings.db_path)
    try:
        if settings.database_url is None:  # PostgreSQL: instances share it (storage/leases.py)
            lease.acquire()
    except LeaseHeld as exc:
        _lease_held("run", exc)
        return 3
    try:
        services = await Services.open(settings, clock)
        try:
            runner = Runner(services, factories)
            try:
                try:
                    await runner.start()
                except SettingsError as exc:  # a channel found its setting wrong on start
                    print(f"taiqu-bot: {exc}", file=sys.stderr)
                    return 2
                await stop.wait()
                logging.getLogger("bot").info("stopping: finishing the reminders in flight")
            finally:
                # Pushes in flight finish and are recorded while the channels and database
                # are still open; only then are they closed.
                await runner.stop()
        finally:
            await services.close()
    finally:
        lease.release()
    return 0


async def _calendar(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: done; 1: `remove` found no setting for the day; 2: bad DATE or YEAR."""
    import re
    from datetime import date

    from bot.services import Services
    from bot.workcal import (
        WEEKDAY_ZH,
        WorkCalendar,
        add_override,
        builtin_knows,
        list_year,
        remove_override,
    )

    def bad(message: str) -> int:
        print(f"taiqu-bot calendar {args.action}: {message}", file=sys.stderr)
        return 2

    kinds = {True: "上班 workday", False: "休息 holiday"}
    sources = {"override": "管理员设置 override", "chinese_calendar": "内置 chinese-calendar",
               "weekday_fallback": "周一至周五推算 weekday fallback"}
    if args.action == "list":
        if not re.fullmatch(r"\d{4}", args.year) or not 1900 <= int(args.year) <= 2100:
            return bad(f"invalid year {args.year!r} (expected YYYY, e.g. 2027)")
        year = int(args.year)
    else:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.date):
                raise ValueError(args.date)
            day = date.fromisoformat(args.date)
        except ValueError:
            return bad(f"invalid date {args.date!r} (expected YYYY-MM-DD, e.g. 2027-10-01)")
    services = await Services.open(settings)
    try:
        db = services.db
        if args.action == "list":
            days = await list_year(db, year)
            admin = sum(1 for d in days if d.source == "override")
            if days.provisional:
                print(f"{year}年：暂定——内置日历没有该年数据，按周一至周五推算，请录入该年的节假日和"
                      f"调休上班日 / {year}: provisional — not in the built-in calendar, Monday to "
                      "Friday assumed; add the year's holidays and make-up working days")
            elif builtin_knows(year):
                print(f"{year}年：已知，内置国务院节假日安排，管理员设置 {admin} 天 / "
                      f"{year}: known, built-in State Council schedule, "
                      f"{admin} admin override(s)")
            else:
                print(f"{year}年：已知，按管理员录入的 {admin} 天，其余按周一至周五 / {year}: "
                      f"known from {admin} admin override(s), Monday to Friday otherwise")
            for info in days:
                note = f"  {info.note}" if info.note else ""
                print(f"{info.day.isoformat()} {WEEKDAY_ZH[info.day.weekday()]}  "
                      f"{kinds[info.workday]}  {sources[info.source]}{note}")
            if not days:
                print("（没有节假日或调休 / no holidays or make-up days）")
            return 0
        label = f"{day.isoformat()} {WEEKDAY_ZH[day.weekday()]}"
        if args.action == "remove":
            if not await remove_override(db, day):
                print(f"{label}：没有管理员设置 / no admin setting for this day")
                return 1
            now = (await WorkCalendar.load(db)).info(day)
            print(f"已删除 / removed: {label}，现为 / now {kinds[now.workday]} "
                  f"({sources[now.source]})")
            return 0
        kind = "holiday" if args.action == "add-holiday" else "workday"
        was = (await WorkCalendar.load(db)).info(day)
        await add_override(db, day, kind, args.note, services.clock.now())
        print(f"已设置 / set: {label} {kinds[kind == 'workday']}"
              + (f"  {args.note.strip()}" if args.note and args.note.strip() else ""))
        if was.source != "override" and was.workday == (kind == "workday"):
            print(f"（提示 / note: 该日本来就是 {kinds[was.workday]}，"
                  f"依据 / per {sources[was.source]}）")
        if not builtin_knows(day.year):
            # One entry makes the whole year count as known: say so before it misleads.
            print(f"注意：内置日历没有 {day.year} 年数据，录入后该年不再标为暂定，"
                  f"请把该年全部节假日和调休上班日都录入 / note: {day.year} now counts as "
                  "known; enter all of its holidays and make-up working days")
        return 0
    finally:
        await services.close()


async def _areas(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: done; 2: unknown team or area."""
    from bot.services import Services

    labels = {"city": "城区 city", "rural": "农村 rural", "remote": "特殊边远 remote"}
    services = await Services.open(settings)
    try:
        team = await services.db.fetchone("SELECT id, name FROM teams WHERE name = ?",
                                          (args.team.strip(),))
        if team is None:
            print(f"taiqu-bot areas {args.action}: 没有这个班组 / unknown team {args.team!r}",
                  file=sys.stderr)
            return 2
        rows = await services.db.fetchall(
            "SELECT name, kind FROM areas WHERE team_id = ? ORDER BY id", (team["id"],))
        if args.action == "list":
            for r in rows:
                print(f"{r['name']}  {labels.get(r['kind'], r['kind'])}")
            if not rows:
                print("（该班组还没有台区 / the team has no areas yet）")
            return 0
        name = args.area.strip()
        if name not in {r["name"] for r in rows}:
            known = "、".join(r["name"] for r in rows) or "-"
            print(f"taiqu-bot areas set-kind: {team['name']} 没有台区 {name!r} / unknown area "
                  f"(areas: {known})", file=sys.stderr)
            return 2
        await services.db.execute("UPDATE areas SET kind = ? WHERE team_id = ? AND name = ?",
                                  (args.kind, team["id"], name))
        print(f"已设置 / set: {team['name']} {name} → {labels[args.kind]}"
              "（新登记的报修按此计算到达时限 / applies to repairs registered from now on）")
        return 0
    finally:
        await services.close()


def _log_to_file(settings: Settings, name: str) -> Path:
    """The local chat's own log lines (someone else's reminder waiting, the scheduler
    stopping) go to logs/ next to the database, not between the chat's lines; private,
    as they may name people and records."""
    from bot.private_files import private_dir

    path = private_dir(settings.db_path.parent / "logs") / name
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
    os.chmod(path, FILE_MODE)  # an older file created with the umask's mode
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    return path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "run" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters (users' texts) at DEBUG.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"taiqu-bot: {exc}", file=sys.stderr)
        return 2
    if args.command == "invite":
        return asyncio.run(_invite(settings, args))
    if args.command == "chat":
        _log_to_file(settings, "chat.log")
        return asyncio.run(_chat(settings, args))
    if args.command == "customers":
        return asyncio.run(_customers(settings, args))
    if args.command == "arrears":
        return asyncio.run(_arrears(settings, args))
    if args.command == "calendar":
        return asyncio.run(_calendar(settings, args))
    if args.command == "export":
        return asyncio.run(_export(settings, args))
    if args.command == "areas":
        return asyncio.run(_areas(settings, args))
    if args.command == "db":
        return asyncio.run(_db_copy(settings, args))
    if args.command == "wecom":
        from bot.channels.wecom.admin import bind_existing, wecom_menu

        if args.action == "bind":
            return asyncio.run(bind_existing(settings, _line(args.team), _line(args.name),
                                             args.userid.strip()))
        return asyncio.run(wecom_menu(settings))
    if args.command == "telegram":
        from bot.channels.telegram_admin import telegram_admin

        return asyncio.run(telegram_admin(settings, args.action))
    if args.command == "lineloss":
        from bot.features.lineloss.cli import lineloss_cli

        return asyncio.run(lineloss_cli(settings, args))
    if args.command == "teams":
        from bot.channels.wecom.admin import set_robot

        return asyncio.run(set_robot(settings, args.team.strip(), args.url.strip()))
    return asyncio.run(_run(settings))


if __name__ == "__main__":
    sys.exit(main())
