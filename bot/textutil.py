"""Text helpers shared by the core and the channels."""

from __future__ import annotations

import unicodedata

TELEGRAM_LIMIT = 4096


def normalize_input(text: str) -> str:
    """Full-width digits, letters and punctuation to half-width; trim; collapse blanks."""
    folded = unicodedata.normalize("NFKC", text)
    return " ".join(folded.split())


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split a long reply into chunks of at most `limit` characters, at line breaks if possible."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:  # no useful line break: cut at the limit
            cut = limit
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        chunks.append(rest)
    return chunks
