"""/start CODE: turning an invite code into a registered user of this chat."""

from __future__ import annotations

import logging

from bot.events import Incoming, Outcome
from bot.handlers.menu import greeting
from bot.i18n import t
from bot.services import Ctx, Services
from bot.storage.people import InviteError
from bot.storage.steps import StepRead
from bot.storage.throttle import InviteThrottle

log = logging.getLogger(__name__)


class StartHandler:
    def __init__(self, services: Services) -> None:
        self.services = services
        # Wrong codes per chat identity and overall, in the database: guessing stays slow
        # across restarts and across many accounts (settings invite_*).
        self.throttle = InviteThrottle(services.db, services.settings)

    def _locale(self, ev: Incoming) -> str:
        from bot.i18n import normalize_locale

        return normalize_locale(ev.language) or self.services.settings.locale

    async def stranger(self, ev: Incoming) -> Outcome:
        return Outcome().add(t(self._locale(ev), "start.need_code"))

    async def handle(self, ev: Incoming, code: str, step: StepRead) -> Outcome:
        """`step`: the step's read (whose identity this is, their areas: no read again)."""
        services = self.services
        now = services.clock.now()
        user = step.user
        if user is not None:
            out = await greeting(Ctx(services, user, now, step.areas, step.team_areas))
            if code:
                out.replies.insert(0, Outcome().add(t(user.locale or services.settings.locale,
                                                      "start.already")).replies[0])
            return out
        locale = self._locale(ev)
        if not code:
            return Outcome().add(t(locale, "start.need_code"))
        refusal = await self.throttle.refusal(ev.channel, ev.external_id, now)
        if refusal is not None:
            key = "start.paused" if refusal.reason == "paused" else "start.too_many"
            return Outcome().add(t(locale, key, minutes=refusal.minutes))
        try:
            user = await services.people.redeem_invite(
                code, channel=ev.channel, external_id=ev.external_id,
                fallback_name=ev.display_name or t(locale, "start.default_name"), now=now)
        except InviteError as exc:
            paused_after = await self.throttle.failed(ev.channel, ev.external_id, now)
            if paused_after is not None:  # once per pause, not per refused attempt
                log.warning("%d wrong invite codes in the last minute: all code attempts are "
                            "refused for %d minutes", paused_after,
                            services.settings.invite_lockout_minutes)
            return Outcome().add(t(locale, f"start.code_{exc.reason}"))
        if ev.language and user.locale is None and locale != services.settings.locale:
            await services.people.set_locale(user.id, locale)
            user = await services.people.user(user.id) or user
        return await greeting(Ctx(services, user, now), welcome=True)
