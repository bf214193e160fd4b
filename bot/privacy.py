"""Masking on the server (个人信息保护法): what leaves the database is masked unless revealed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.rules import sensitive_categories


def mask_phone(phone: str | None) -> str:
    """138****1234 for a mobile; 0551-****5678 for a landline; short numbers all but 2 digits."""
    if not phone:
        return ""
    if "*" in phone:  # masked already (the audit trail stores masked numbers)
        return phone
    if re.fullmatch(r"1\d{10}", phone):
        return f"{phone[:3]}****{phone[-4:]}"
    m = re.fullmatch(r"(0\d{2,3})-(\d{7,8})(-\d+)?", phone)
    if m:
        return f"{m.group(1)}-****{m.group(2)[-4:]}"
    return "*" * max(0, len(phone) - 2) + phone[-2:]


def mask_name(name: str | None) -> str:
    """张* / 欧阳** : the surname stays, the rest is hidden."""
    if not name:
        return ""
    if len(name) <= 1:
        return "*"
    keep = 2 if len(name) >= 4 else 1  # compound surnames (欧阳, 司马) on 4-character names
    return name[:keep] + "*" * (len(name) - keep)


def mask_address(address: str | None) -> str:
    """Down to 村/小区/路: the house number part is hidden."""
    if not address:
        return ""
    m = re.match(r"^(.*?(?:村|小区|社区|苑|路|街|巷|组))", address)
    return (m.group(1) + "***") if m else address[: max(1, len(address) // 2)] + "***"


def mask_account(account: str | None) -> str:
    """5500****45: enough to tell two households apart on a list, not to look one up."""
    if not account:
        return ""
    return account[:4] + "****" + account[-2:] if len(account) > 6 else "*" * len(account)


# --- what "masked" means in each file -----------------------------------------------------
class Mask(StrEnum):
    KEEP = "keep"
    NAME = "name"  # 张*
    PHONE = "phone"  # 138****1234
    ACCOUNT = "account"  # 5500****45
    ADDRESS = "address"  # down to 村/小区/路
    CATEGORIES = "categories"  # sensitive categories -> one HIDDEN_CATEGORY
    HIDE = "hide"  # left empty


HIDDEN_CATEGORY = "hidden"  # locale key category.hidden: "特殊客户（敏感类别不显示）"


@dataclass(frozen=True)
class ColumnMask:
    ordinary: Mask
    sensitive: Mask  # a customer in a sensitive category (个人信息保护法 art. 28)


_, M = ColumnMask, Mask
# File -> column -> rule. The one definition of masking: every writer asks mask(), and the
# README's table is this one. Columns without personal data (台区, dates, counts) are not
# listed; a column with personal data that is missing here is a bug.
MASKS: dict[str, dict[str, ColumnMask]] = {
    # taiqu-bot customers export without --full (--full is for admins and masks nothing)
    "customers": {
        "account_no": _(M.KEEP, M.ACCOUNT), "name": _(M.KEEP, M.NAME),
        "address": _(M.ADDRESS, M.ADDRESS), "phone": _(M.PHONE, M.PHONE),
        "categories": _(M.KEEP, M.CATEGORIES), "situation": _(M.KEEP, M.HIDE),
        "emergency_name": _(M.NAME, M.NAME), "emergency_phone": _(M.PHONE, M.PHONE)},
    # the weekly report's workbook (/report, the Monday push): meant to be passed around
    "report.logs": {"account": _(M.KEEP, M.ACCOUNT)},
    "report.complaints": {"customer": _(M.NAME, M.NAME)},
    # decision_reason: the lead's why for cutting off a medical household, kept (whoever
    # checks the cut-off needs it; the prompt asks not to write medical details).
    "report.arrears": {"account": _(M.KEEP, M.ACCOUNT), "customer": _(M.NAME, M.NAME),
                       "decision_reason": _(M.KEEP, M.KEEP)},
    "report.visits": {"account": _(M.KEEP, M.ACCOUNT), "customer": _(M.NAME, M.NAME),
                      "categories": _(M.KEEP, M.CATEGORIES)},
    # /export 日志 and taiqu-bot export logs: the printable paper log
    "paper": {"account": _(M.KEEP, M.ACCOUNT), "customer": _(M.NAME, M.NAME)},
}
del _, M


def mask_categories(keys: list[str], sensitive: frozenset[str]) -> list[str]:
    """The categories anyone may read, with one HIDDEN_CATEGORY for the sensitive ones."""
    kept = [k for k in keys if k not in sensitive]
    return [*kept, HIDDEN_CATEGORY] if len(kept) < len(keys) else kept


def mask(file: str, column: str, value: Any, *, sensitive: bool) -> Any:
    """`value` of `column` in `file` as that file shows it (MASKS); `sensitive`: the row is
    about a customer in a sensitive category. A category value is a list of keys."""
    rule = MASKS[file].get(column)
    how = Mask.KEEP if rule is None else rule.sensitive if sensitive else rule.ordinary
    if how is Mask.KEEP or value is None:
        return value
    if how is Mask.HIDE:
        return None
    if how is Mask.CATEGORIES:
        return mask_categories(list(value), sensitive_categories())
    return _MASKERS[how](str(value)) or None


_MASKERS = {Mask.NAME: mask_name, Mask.PHONE: mask_phone, Mask.ACCOUNT: mask_account,
            Mask.ADDRESS: mask_address}
