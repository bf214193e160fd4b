"""The status words of each record type, defined once: a record's card in the chat and the
report's workbook both ask here for the locale key (complaint.status.*, arrears.status.*,
outage.status.*, repair.status.*), so a sheet never says something the chat does not."""

from __future__ import annotations

import re
from datetime import datetime

# The coloured marker in front of a chat status ("🟡 已联系，待答复"): a card shows it, a
# spreadsheet cell does not (it would sort and filter by the emoji).
_MARKER = re.compile(r"^[^\w（(]+\s+")


def complaint_status(status: str) -> str:
    return f"complaint.status.{status}"


def arrears_status(status: str, restore_due: object) -> str:
    """Paid with no restore deadline: never cut off, so closed at payment."""
    if status == "paid" and restore_due is None:
        return "arrears.status.paid_closed"
    return f"arrears.status.{status}"


def outage_status(status: str, starts: datetime, ends: datetime, now: datetime) -> str:
    """A planned outage reads as upcoming, ongoing or overrun by the clock."""
    if status != "planned":
        return f"outage.status.{status}"
    if now < starts:
        return "outage.status.upcoming"
    if now < ends:
        return "outage.status.ongoing"
    return "outage.status.overrun"


def repair_status(status: str) -> str:
    return f"repair.status.{status}"


def plain(words: str) -> str:
    """The status words without the chat's marker, for a spreadsheet cell."""
    return _MARKER.sub("", words, count=1)
