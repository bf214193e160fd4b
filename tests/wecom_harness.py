"""Helpers for the WeCom end-to-end tests: the real channel (callback server, inbox, outbox,
API client) against the loopback fake WeCom, users whose callbacks are encrypted and signed by
tests/wecom_reference.py, and small readers for what the bot sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.assistant import Assistant
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.config import WeComSettings, load_wecom_settings
from bot.clock import FakeClock
from bot.services import Services
from tests.fakewecom import FakeWeCom, Sent


def wecom_settings(fake: FakeWeCom, **overrides: Any) -> WeComSettings:
    return load_wecom_settings(corp_id=fake.corp_id, agent_id=fake.agent_id,
                               secret=fake.secret, token=fake.token, aes_key=fake.aes_key,
                               listen="127.0.0.1:0", api_base=fake.base_url, **overrides)


async def start_wecom(services: Services, fake: FakeWeCom,
                      assistant: Assistant | None = None, **overrides: Any) -> WeComChannel:
    channel = WeComChannel(assistant or Assistant(services),
                           wecom=wecom_settings(fake, **overrides))
    await channel.start()
    return channel


def shown(msg: Sent) -> str:
    """What the member reads: a text, or a card's title and sub-title."""
    if msg.msgtype == "text":
        return msg.text
    if msg.msgtype == "template_card":
        title = str(msg.payload.get("main_title", {}).get("title", ""))
        sub = str(msg.payload.get("sub_title_text", ""))
        return f"{title}\n{sub}" if sub else title
    return f"[{msg.msgtype}]"


def texts(msgs: list[Sent]) -> str:
    return "\n".join(shown(m) for m in msgs)


def labels(msg: Sent) -> list[str]:
    return [str(b.get("text")) for b in msg.payload.get("button_list", [])]


@dataclass
class WcUser:
    """One WeCom member writing to the app."""

    fake: FakeWeCom
    channel: WeComChannel
    userid: str

    async def _post(self, xml: str) -> list[Sent]:
        before = len(self.fake.sent(self.userid))
        status, body = await self.fake.post_callback(self.channel.url, xml)
        assert (status, body) == (200, ""), (status, body)
        await self.channel.idle()
        return self.fake.sent(self.userid)[before:]

    async def say(self, text: str) -> list[Sent]:
        return await self._post(self.fake.text_xml(self.userid, text))

    async def event(self, event: str, key: str = "") -> list[Sent]:
        return await self._post(self.fake.event_xml(self.userid, event, key))

    async def image(self, content: bytes = b"\x89PNG fake picture bytes") -> list[Sent]:
        media_id = self.fake.add_media(content, "image/png", "photo.png")
        return await self._post(self.fake.image_xml(self.userid, media_id))

    async def file(self, content: bytes, filename: str) -> list[Sent]:
        media_id = self.fake.add_media(content, "application/octet-stream", filename)
        return await self._post(self.fake.file_xml(self.userid, media_id))

    async def location(self, lat: float, lon: float) -> list[Sent]:
        return await self._post(self.fake.location_xml(self.userid, lat, lon))

    def card_with(self, label: str) -> tuple[Sent, str]:
        for msg in reversed(self.fake.sent(self.userid)):
            for b in msg.payload.get("button_list", []) if msg.msgtype == "template_card" \
                    else []:
                if label in str(b.get("text")):
                    return msg, str(b["key"])
        raise AssertionError(f"no button {label!r} in {self.userid}'s cards")

    async def press(self, label: str) -> list[Sent]:
        """Tap the button; if the choices came numbered in the text (more than a card
        takes), type the number, as a member would."""
        try:
            card, key = self.card_with(label)
        except AssertionError:
            number = self.numbered(label)
            if number is None:
                raise
            return await self.say(str(number))
        return await self._post(self.fake.card_tap_xml(self.userid, card, key))

    def numbered(self, label: str) -> int | None:
        """The number of the latest numbered choice "N. label" shown as text."""
        for msg in reversed(self.fake.sent(self.userid)):
            for line in reversed(shown(msg).splitlines()):
                head, sep, rest = line.partition(". ")
                if sep and head.strip().isdigit() and label in rest:
                    return int(head)
        return None

    @property
    def sent(self) -> list[Sent]:
        return self.fake.sent(self.userid)

    @property
    def last(self) -> Sent:
        return self.sent[-1]


def tick(clock: FakeClock, fake: FakeWeCom, channel: WeComChannel, seconds: float) -> None:
    """Time passes for the bot and for WeCom alike (rate windows, back-offs)."""
    clock.advance(seconds=seconds)
    fake.advance(seconds)
    channel.sender.kick()
