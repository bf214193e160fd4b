"""Revealing a customer's full phone number: audited and limited per person, the one way any
feature shows a number unmasked (the card, the outage checklist)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.services import Ctx
from bot.storage.customers import Customer, RevealLimited


@dataclass(frozen=True)
class Revealed:
    """One reveal's result: the number (None: not visible or read-only; "": none on file),
    or why it was refused, and the toast to show."""

    phone: str | None
    refusal: str | None = None
    toast: str = ""


async def reveal_number(ctx: Ctx, customer_id: int, which: str,
                        known: Customer | None = None) -> Revealed:
    """The full number for this user once: audited and limited per person (settings
    reveal_limit / reveal_window_minutes), wherever it is shown (card, outage checklist).
    `known`: the record as this user may see it, read already."""
    s = ctx.services.settings
    try:
        phone = await ctx.services.customers.reveal_phone(
            ctx.user, customer_id, which, ctx.now, limit=s.reveal_limit,
            window=timedelta(minutes=s.reveal_window_minutes), known=known)
    except RevealLimited as exc:
        return Revealed(None, ctx.t("customer.reveal_limited", limit=exc.limit,
                                    minutes=s.reveal_window_minutes),
                        ctx.t("customer.reveal_limited_toast"))
    if phone is None:
        return Revealed(None)
    if not phone:
        return Revealed("", toast=ctx.t("customer.no_number"))
    return Revealed(phone, toast=ctx.t("customer.revealed_toast"))
