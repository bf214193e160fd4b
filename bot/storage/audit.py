"""Audit trail: creation, edits (old and new values), reveals, deactivation, imports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.db import Database, Tx, from_iso, iso


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    detail: dict[str, Any]
    at: datetime


async def record(tx: Tx, *, team_id: int, user_id: int | None, actor: str, entity: str,
                 entity_id: int | None, action: str, at: datetime,
                 detail: dict[str, Any] | None = None) -> None:
    await tx.execute(
        "INSERT INTO audit_log(team_id, user_id, actor, entity, entity_id, action, detail, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (team_id, user_id, actor, entity, entity_id, action,
         json.dumps(detail or {}, ensure_ascii=False), iso(at)))


async def history(db: Database, entity: str, entity_id: int, limit: int = 20) -> list[AuditEntry]:
    rows = await db.fetchall(
        "SELECT actor, action, detail, at FROM audit_log WHERE entity = ? AND entity_id = ? "
        "ORDER BY at DESC, id DESC LIMIT ?", (entity, entity_id, limit))
    return [AuditEntry(r["actor"], r["action"], json.loads(r["detail"]), from_iso(r["at"]))
            for r in rows]
