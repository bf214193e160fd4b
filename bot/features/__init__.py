"""The composition root: the features this assistant has, in one explicit list.

The list's order is the free-text priority: a sentence goes to the first feature whose
intent reads it. The specific sentence starters come first (待办, 登记欠费, 报修 …, 报表),
the special-customer register next, and the work log last: it reads any sentence that
names a work item or an area, so it must not take a sentence meant for another feature.
Only its `抢修记录 …` (the work, then 记录) goes before repairs, whose words it shares."""

from __future__ import annotations

from bot.channels.wecom import robot as wecom_robot
from bot.features import (
    arrears,
    complaints,
    connections,
    hazards,
    meters,
    outages,
    repairs,
    todo,
)
from bot.features.customers import handlers as customers
from bot.features.lineloss import handlers as lineloss
from bot.features.notes import handlers as notes
from bot.features.plans import handlers as plans
from bot.features.reports import handlers as reports
from bot.features.tasks import handlers as tasks
from bot.features.worklog import first as worklog_first
from bot.features.worklog import handlers as worklog
from bot.router import Router

FEATURES = (todo, arrears, complaints, meters, connections, outages, worklog_first, repairs,
            hazards, reports, tasks, plans, notes, customers, lineloss, worklog)

# Buttons already on phones carry the actions as they were before features had namespaces
# (reminders and cards stay in a chat for weeks): old action -> `<feature>.<action>`.
# Drop an entry once no message that old can still be pressed.
LEGACY_ACTIONS = {
    **{a: f"todo.{a}" for a in ("snz", "quiet")},
    **{a: f"arrears.{a}" for a in ("arr", "arrn", "arrq", "arrc", "arrp", "arrs", "arry",
                                   "arrx")},
    **{a: f"complaints.{a}" for a in ("cpl", "cplc", "cplr")},
    **{a: f"outages.{a}" for a in ("out", "outc", "outh", "outn", "outr", "outx", "outxy")},
    **{a: f"repairs.{a}" for a in ("rep", "repa", "repr")},
    **{a: f"worklog.{a}" for a in ("logs", "log", "logedit")},
    **{a: f"customers.{a}" for a in ("cust", "custp", "reveal", "revealE", "custlog", "custon",
                                     "custedit", "custvisit", "custoff")},
}


def build_router() -> Router:
    root = Router()
    for feature in FEATURES:
        root.include_router(feature.router)
    # Not a feature: the WeCom group robot's Monday summary runs with the reminder scans.
    root.include_router(wecom_robot.router)
    root.legacy_actions.update(LEGACY_ACTIONS)
    return root
