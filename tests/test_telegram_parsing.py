"""CPU per chat step (issue #12): a typed step builds one Message, its update's. Each polled
update used to be parsed twice (screened, then by Bot.get_updates) and each sendMessage answer
once more into a Message nothing read. Counts, not timings: they are deterministic."""

from __future__ import annotations

import pytest
from telegram import Message

from bot.channels.telegram import TelegramChannel
from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, body, register

pytestmark = pytest.mark.timeout(60)


async def test_a_typed_step_parses_its_update_once_and_no_answer(
        channel: TelegramChannel, services: Services, fake_api: FakeBotAPI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    built: list[int] = []
    parse = Message.de_json.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Message], data: dict | None, bot: object = None) -> Message | None:
        built.append(1)
        return parse(cls, data, bot)

    monkeypatch.setattr(Message, "de_json", classmethod(counted))
    r = await zhang.say("/help")
    assert len(r) == 1 and body(r[0]).startswith(L("help.body"))
    assert len(built) == 1  # the update's message; Telegram's answer to sendMessage is not read
