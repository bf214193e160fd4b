"""A lead sends the line-loss export in chat: recognised by its header row, imported for the
lead's own team as the CLI imports it, the answer saying what it did."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path, PurePath

from bot.events import Outcome
from bot.features.lineloss.importer import (
    HEADER_SEARCH_ROWS,
    LINELOSS_HEADER,
    LinelossIOError,
    import_lineloss,
    is_header,
    summary_lines,
)
from bot.services import Ctx
from bot.tabular import TableError, blank, open_rows

KINDS = ("csv", "txt", "xlsx")
CHAT_ERRORS = 10  # rows with errors listed in the chat answer (the count says the rest)
ITEM_BUTTONS = 6  # opened items offered as buttons under the answer


def _saved(directory: str, filename: str, data: bytes) -> Path:
    """The bytes as a file the import reads, named by kind only (never the sender's name)."""
    suffix = PurePath(filename).suffix.lower() or (".xlsx" if data[:2] == b"PK" else ".csv")
    path = Path(directory) / f"upload{suffix}"
    path.write_bytes(data)
    return path


def _has_header(path: Path) -> bool:
    try:
        rows = open_rows(path, LINELOSS_HEADER)
    except TableError:
        return False
    try:
        for number, cells in enumerate(rows, start=1):
            if number > HEADER_SEARCH_ROWS:
                break
            if not blank(cells) and is_header(cells):
                return True
    except TableError:
        return False
    finally:
        rows.close()
    return False


async def sniff(filename: str, data: bytes) -> bool:
    """A 日期 / 台区 / 供电量 / 售电量 header in the first rows (a title row may come first)."""
    with tempfile.TemporaryDirectory(prefix="taiqu-lineloss-") as tmp:
        return await asyncio.to_thread(_has_header, _saved(tmp, filename, data))


async def handle(ctx: Ctx, filename: str, data: bytes) -> tuple[Outcome, list[int]]:
    """The answer, and the items the import opened (their buttons go under it)."""
    if not ctx.user.sees_whole_team:
        return Outcome().add(ctx.t("lineloss.upload.lead_only")), []
    with tempfile.TemporaryDirectory(prefix="taiqu-lineloss-") as tmp:
        try:
            result = await import_lineloss(ctx.services, _saved(tmp, filename, data),
                                           ctx.user.team_name, actor=f"user:{ctx.user.id}",
                                           locale=ctx.locale)
        except LinelossIOError as exc:
            return Outcome().add(ctx.t("lineloss.upload.failed", name=filename,
                                       why=str(exc))), []
    lines = [ctx.t("lineloss.upload.head", name=filename),
             *summary_lines(result, ctx.locale, CHAT_ERRORS)]
    return Outcome().add("\n".join(lines)), result.follow.opened[:ITEM_BUTTONS]
