"""Audit trail: creation, edits (old and new values), reveals, deactivation, imports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.privacy import mask_phone
from bot.storage.batch import Batch, Ref
from bot.storage.db import Read, Row, Tx, from_iso, iso

# Numbers are kept masked in the trail: a changed or withdrawn number must not live on in full
# here (migration 0014 masked the rows written before).
_PHONE_KEYS = ("phone", "emergency_phone")


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    detail: dict[str, Any]
    at: datetime


def redact(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail with every phone number masked: a single value or an [old, new] pair."""
    out = dict(detail)
    for key in _PHONE_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = mask_phone(value)
        elif isinstance(value, list):
            out[key] = [mask_phone(v) if isinstance(v, str) else v for v in value]
    return out


_INSERT = ("INSERT INTO audit_log(team_id, user_id, actor, entity, entity_id, action, detail, "
           "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


async def record(tx: Tx, *, team_id: int, user_id: int | None, actor: str, entity: str,
                 entity_id: int | None, action: str, at: datetime,
                 detail: dict[str, Any] | None = None) -> None:
    await tx.execute(_INSERT, (team_id, user_id, actor, entity, entity_id, action,
                               json.dumps(redact(detail or {}), ensure_ascii=False), iso(at)))


def record_into(batch: Batch, *, team_id: int, user_id: int | None, actor: str, entity: str,
                entity_id: Ref | int, action: str, at: datetime,
                detail: dict[str, Any] | None = None) -> None:
    """`record` in a batch (of a row it inserts: its id a Ref)."""
    batch.execute(_INSERT, (team_id, user_id, actor, entity, entity_id, action,
                            json.dumps(redact(detail or {}), ensure_ascii=False), iso(at)))


def history_read(entity: str, entity_id: int, limit: int = 20) -> Read:
    """An entity's latest entries, newest first (read with the record: `entries`)."""
    return ("SELECT actor, action, detail, at FROM audit_log WHERE entity = ? AND entity_id = ? "
            "ORDER BY at DESC, id DESC LIMIT ?", (entity, entity_id, limit))


def entries(rows: list[Row]) -> list[AuditEntry]:
    return [AuditEntry(r["actor"], r["action"], json.loads(r["detail"]), from_iso(r["at"]))
            for r in rows]
