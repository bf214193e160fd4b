"""The work log's one sentence starter that must come before the record features: the work
named first, then 记录 (`抢修记录 3号台区 更换熔断器`). 报修 / 抢修 also start a repair, so the
composition root lists this router before repairs; the rest of the work log stays last."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.events import Outcome
from bot.features.worklog.handlers import worklog_entry_intent
from bot.features.worklog.intents import names_work_then_log
from bot.router import Router
from bot.services import Ctx

if TYPE_CHECKING:
    from bot.assistant import Assistant

router = Router("worklog_first")


@router.intent
async def work_then_log_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    if not names_work_then_log(text):
        return None
    return await worklog_entry_intent(app, ctx, text)
