"""User-facing strings. Every string a user sees comes from locales/<locale>.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from bot.config import LOCALES_DIR, SUPPORTED_LOCALES

FALLBACK = "zh_CN"


def catalog_files(locale: str) -> list[Path]:
    """locales/<locale>.json (the core) and locales/<locale>/*.json (one per record module)."""
    return [LOCALES_DIR / f"{locale}.json", *sorted((LOCALES_DIR / locale).glob("*.json"))]


@cache
def catalog(locale: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for path in catalog_files(locale):
        with path.open(encoding="utf-8") as fh:
            part: dict[str, str] = json.load(fh)
        clash = data.keys() & part.keys()
        if clash:
            raise ValueError(f"{path}: keys already defined elsewhere: {sorted(clash)}")
        data.update(part)
    return data


def t(locale: str, key: str, **kwargs: Any) -> str:
    """Translate `key`; a key missing in `locale` falls back to zh_CN, then to the key itself."""
    loc = locale if locale in SUPPORTED_LOCALES else FALLBACK
    text = catalog(loc).get(key)
    if text is None:
        text = catalog(FALLBACK).get(key, key)
    return text.format(**kwargs) if kwargs else text


def normalize_locale(code: str | None) -> str | None:
    """Map 'zh', 'zh-hans', 'en-US', 'zh_CN' ... to a supported locale."""
    if not code:
        return None
    c = code.strip().lower().replace("-", "_")
    if c.startswith("zh") or c in ("cn", "中文"):
        return "zh_CN"
    if c.startswith("en") or c == "english":
        return "en"
    return None
