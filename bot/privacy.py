"""Masking on the server (个人信息保护法): what leaves the database is masked unless revealed."""

from __future__ import annotations

import re


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
