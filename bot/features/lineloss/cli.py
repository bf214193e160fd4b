"""`taiqu-bot lineloss import FILE [--team T] [--dry-run]`: the daily line-loss export of the
用电信息采集 system into the store (see importer.py)."""

from __future__ import annotations

import argparse
import sys

from bot.config import Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ll = sub.add_parser("lineloss", help="daily line loss per 台区 (用电信息采集 export)")
    ll_sub = ll.add_subparsers(dest="action", required=True)
    imp = ll_sub.add_parser("import", help="import a CSV (UTF-8, GBK or UTF-16) or XLSX file: "
                            "日期, 台区 (or 台区编号), 供电量, 售电量, 线损率 (optional)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--team", default=None,
                     help="the team whose 台区 the file names (default: found by area name)")
    imp.add_argument("--dry-run", action="store_true",
                     help="check the file and report, write nothing")


async def lineloss_cli(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: every row imported; 1: some rows had errors (the rest imported); 2: a file
    error (nothing imported)."""
    from bot.features.lineloss.importer import LinelossIOError, import_lineloss, summary_lines
    from bot.services import Services

    services = await Services.open(settings)
    try:
        result = await import_lineloss(services, args.file, args.team, dry_run=args.dry_run,
                                       locale=settings.locale)
    except LinelossIOError as exc:
        print(f"taiqu-bot lineloss import: {exc}", file=sys.stderr)
        return 2
    finally:
        await services.close()
    for line in summary_lines(result, settings.locale):
        print(line)
    return 1 if result.error_rows else 0
