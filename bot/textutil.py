"""Text helpers shared by the core and the channels."""

from __future__ import annotations

TELEGRAM_LIMIT = 4096


# Full-width digits and Latin letters, and the ideographic space, to their ASCII forms.
# Chinese punctuation (，。：) is left alone: it is part of what people write.
_FOLD = {**{0xFF10 + i: ord("0") + i for i in range(10)},
         **{0xFF21 + i: ord("A") + i for i in range(26)},
         **{0xFF41 + i: ord("a") + i for i in range(26)},
         0xFF0D: ord("-"), 0xFF0B: ord("+"),  # typed inside numbers on a Chinese keyboard
         0x3000: ord(" ")}


def normalize_input(text: str) -> str:
    """For matching, not storing: full-width digits and letters folded; blanks collapsed."""
    return " ".join(text.translate(_FOLD).split())


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
