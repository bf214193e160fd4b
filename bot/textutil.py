"""Text helpers shared by the core and the channels."""

from __future__ import annotations

import re
from functools import lru_cache

# Characters no typed text needs and that break or disguise what is written from it:
# C0 controls (NUL, BEL U+0007, ESC U+001B ... make openpyxl refuse the whole workbook),
# DEL, C1 controls, and the bidi embeddings/overrides/isolates that make "exe.xlsx" read as
# "xlsx.exe" (U+202A-U+202E, U+2066-U+2069). Tab and line feed are written on purpose in
# multi-line text and are kept there; everywhere else they become a space.
# Also what XML 1.0 cannot hold although it is no control (U+FFFE, U+FFFF, lone surrogates):
# written into an XLSX, it makes Excel, WPS and openpyxl refuse the whole file.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff"
_UNWANTED = re.compile(f"[{_CONTROLS}]")
_LINE_BREAKS = re.compile(r"[\t\n]")
_CRLF = re.compile(r"\r\n?")
# File names: also path separators and what Windows forbids (the file may be saved there),
# blanks folded to "_"; leading dots so a name is never hidden or "..".
_FILE_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')
MAX_FILE_STEM = 120  # characters; Telegram and most file systems take 255 bytes


def clean_text(text: str, *, multiline: bool = True) -> str:
    """Text as typed, minus control and bidi-override characters (see _CONTROLS).

    `multiline` keeps line breaks (CR LF and CR become LF) and tabs, for free-text content;
    otherwise (names, file names, one-line answers) they become spaces.
    """
    if text.isprintable():  # the common case, checked in C: nothing to remove
        return text
    text = _CRLF.sub("\n", text) if "\r" in text else text
    text = _UNWANTED.sub("", text)
    return text if multiline else _LINE_BREAKS.sub(" ", text)


def safe_filename(text: str, fallback: str = "file") -> str:
    """A file name stem from user-supplied text (a person's or team's name): no control or
    bidi characters, no path separators or characters Windows forbids, no leading dots."""
    stem = _FILE_UNSAFE.sub("_", clean_text(text, multiline=False)).lstrip("._").rstrip("_")
    return stem[:MAX_FILE_STEM] or fallback


# Full-width digits and Latin letters, and the ideographic space, to their ASCII forms.
# Chinese punctuation (，。：) is left alone: it is part of what people write.
_FOLD = {**{0xFF10 + i: ord("0") + i for i in range(10)},
         **{0xFF21 + i: ord("A") + i for i in range(26)},
         **{0xFF41 + i: ord("a") + i for i in range(26)},
         0xFF0D: ord("-"), 0xFF0B: ord("+"),  # typed inside numbers on a Chinese keyboard
         0x3000: ord(" ")}


# A step's typed text is normalised by every reader it passes (the form engine, its typed
# controls, each feature's intent and request pattern: 10-12 times a step, ~2 us each):
# the last few texts are kept, so it is folded once a step (issue #12).
@lru_cache(maxsize=64)
def normalize_input(text: str) -> str:
    """For matching, not storing: full-width digits and letters folded; blanks collapsed."""
    return " ".join(text.translate(_FOLD).split())


# What people put between a keyword and what they mean: '报修：5号台区…', '记录，宣传…'.
_KEYWORD_GLUE = re.compile(r"^[\s:：,，、;；.。!！~～\-－—>》=]+")


def after_keyword(rest: str) -> str:
    """What follows a keyword, without the colon, comma or dash typed after the keyword:
    punctuation there is glue, not content ('报修：5号台区…' -> '5号台区…')."""
    return _KEYWORD_GLUE.sub("", rest)
