"""/start CODE: turning an invite code into a registered user of this chat."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from bot.events import Incoming, Outcome
from bot.handlers.menu import greeting
from bot.i18n import t
from bot.services import Ctx, Services
from bot.storage.people import InviteError

MAX_FAILURES = 5
FAILURE_WINDOW_S = 600.0


class StartHandler:
    def __init__(self, services: Services) -> None:
        self.services = services
        # Wrong codes per chat identity, to make guessing slow as well as improbable.
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _locale(self, ev: Incoming) -> str:
        from bot.i18n import normalize_locale

        return normalize_locale(ev.language) or self.services.settings.locale

    def _throttled(self, key: tuple[str, str]) -> bool:
        q = self._failures[key]
        now = time.monotonic()
        while q and now - q[0] > FAILURE_WINDOW_S:
            q.popleft()
        return len(q) >= MAX_FAILURES

    async def stranger(self, ev: Incoming) -> Outcome:
        return Outcome().add(t(self._locale(ev), "start.need_code"))

    async def handle(self, ev: Incoming, code: str) -> Outcome:
        services = self.services
        now = services.clock.now()
        user = await services.people.by_identity(ev.channel, ev.external_id)
        if user is not None:
            out = await greeting(Ctx(services, user, now))
            if code:
                out.replies.insert(0, Outcome().add(t(user.locale or services.settings.locale,
                                                      "start.already")).replies[0])
            return out
        locale = self._locale(ev)
        if not code:
            return Outcome().add(t(locale, "start.need_code"))
        key = (ev.channel, ev.external_id)
        if self._throttled(key):
            return Outcome().add(t(locale, "start.too_many", minutes=FAILURE_WINDOW_S // 60))
        try:
            user = await services.people.redeem_invite(
                code, channel=ev.channel, external_id=ev.external_id,
                fallback_name=ev.display_name or t(locale, "start.default_name"), now=now)
        except InviteError as exc:
            self._failures[key].append(time.monotonic())
            return Outcome().add(t(locale, f"start.code_{exc.reason}"))
        if ev.language and user.locale is None and locale != services.settings.locale:
            await services.people.set_locale(user.id, locale)
            user = await services.people.user(user.id) or user
        return await greeting(Ctx(services, user, now), welcome=True)
