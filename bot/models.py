"""Plain records the core passes around (storage returns these, never raw rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    MANAGER = "manager"
    LEAD = "lead"
    ADMIN = "admin"


@dataclass(frozen=True)
class Area:
    id: int
    team_id: int
    name: str
    kind: str = "rural"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    team_id: int
    team_name: str
    locale: str | None
    unreachable: bool = False  # a push failed (bot blocked) since the user last wrote

    @property
    def sees_whole_team(self) -> bool:
        return self.role in (Role.LEAD, Role.ADMIN)


@dataclass(frozen=True)
class WorkLog:
    id: int
    team_id: int
    area_id: int
    area_name: str
    user_id: int
    user_name: str
    items: tuple[str, ...]
    occurred_at: datetime
    has_time: bool
    content: str
    problems: str | None
    latitude: float | None
    longitude: float | None
    created_at: datetime
    updated_at: datetime | None
    updated_by: str | None = None
    photos: tuple[str, ...] = field(default=())
    photo_notes: dict[str, str] = field(default_factory=dict)
    # Every 台区 of the entry, the first being area_id (an entry may cover several).
    area_ids: tuple[int, ...] = field(default=())
    area_names: tuple[str, ...] = field(default=())
    result: str | None = None  # 处理结果
    ticket_no: str | None = None  # 关联工单号
    customer_id: int | None = None  # 涉及客户 (a visit to a special customer)
    customer_name: str | None = None
    customer_account: str | None = None
    comments: tuple[LogComment, ...] = field(default=())

    @property
    def areas_text(self) -> str:
        return "、".join(self.area_names or (self.area_name,))


@dataclass(frozen=True)
class LogComment:
    """A lead's 批注 on a work-log entry."""

    id: int
    author: str
    body: str
    created_at: datetime
