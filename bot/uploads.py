"""A file sent in chat (an arrears list, a line-loss export): fetched from the channel that
received it and offered to the features' file readers in the composition root's order; the
first whose `sniff` recognises it takes it. No platform types here (bot.channel.FileSource).
"""

from __future__ import annotations

from pathlib import PurePath

from bot.channel import FileSource, FileTooLarge, FileUnavailable
from bot.events import Incoming, Outcome
from bot.router import FileReader
from bot.services import Ctx

MB = 1024 * 1024


def file_kind(filename: str | None, data: bytes | None = None) -> str:
    """'清单.XLSX' -> 'xlsx'. Without a name ending (WeCom may give none) the bytes tell: a
    zip package is an XLSX, anything else is read as delimited text."""
    suffix = PurePath(filename).suffix.lower().lstrip(".") if filename else ""
    if suffix or data is None:
        return suffix
    return "xlsx" if data[:2] == b"PK" else "csv"


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f}"


def not_read(ctx: Ctx, readers: list[FileReader], filename: str | None) -> str:
    """Which files the bot reads, one line per reader (in root order, each said once)."""
    lines = dict.fromkeys(ctx.t(r.describe) for r in readers)
    return "\n".join([ctx.t("files.not_read", name=filename or ctx.t("files.unnamed")),
                      *(ctx.t("files.readable_line", what=line) for line in lines)])


async def offer_file(ctx: Ctx, ev: Incoming, readers: list[FileReader],
                     source: FileSource | None) -> Outcome | str:
    """The taking reader's outcome, or the polite note saying why no reader took the file.
    A file whose name ending no reader reads is not even downloaded."""
    assert ev.document is not None
    name = ev.filename
    kind = file_kind(name)
    if kind and not any(kind in r.kinds for r in readers):
        return not_read(ctx, readers, name)
    if source is None:  # a channel that delivers files must say how to fetch them
        return ctx.t("files.fetch_failed")
    limit = ctx.services.settings.upload_max_mb * MB
    try:
        got = await source.fetch_file(ev.document, limit)
    except FileTooLarge as exc:
        return _too_large(ctx, exc.size, limit)
    except FileUnavailable:
        return ctx.t("files.fetch_failed")
    if len(got.data) > limit:  # a source that could not tell the size before downloading
        return _too_large(ctx, len(got.data), limit)
    name = name or got.filename or ""
    kind = kind or file_kind(name, got.data)
    for reader in readers:
        if kind in reader.kinds and await reader.sniff(name, got.data):
            return await reader.handle(ctx, name, got.data)
    return not_read(ctx, readers, name)


def _too_large(ctx: Ctx, size: int | None, limit: int) -> str:
    if size:
        return ctx.t("files.too_large", size=_megabytes(size), limit=limit // MB)
    return ctx.t("files.too_large_unknown", limit=limit // MB)
