"""The WeCom channel end to end: callbacks from the fake WeCom (encrypted and signed by
tests/wecom_reference.py), the real callback server, inbox, core, outbox and API client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.wecom.channel import WeComChannel
from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import make_user
from tests.fakewecom import FakeWeCom
from tests.tg_harness import L
from tests.wecom_harness import WcUser, labels, shown, start_wecom, texts


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f
        # WeCom drops over-budget messages silently: no test may ever cause one.
        assert f.dropped == [], f.dropped
        assert f.truncated == [], f.truncated


@pytest.fixture
async def channel(services: Services, fake: FakeWeCom) -> AsyncIterator[WeComChannel]:
    ch = await start_wecom(services, fake)
    yield ch
    await ch.stop()


@pytest.fixture
async def zhang(services: Services, fake: FakeWeCom, channel: WeComChannel) -> WcUser:
    await make_user(services, "张三", channel="wecom", external_id="zhangsan")
    return WcUser(fake, channel, "zhangsan")


async def test_prefilled_worklog_asks_only_what_is_missing(zhang: WcUser,
                                                           services: Services) -> None:
    r = await zhang.say("记录巡视 3号台区")
    assert L("form.worklog.time") in texts(r)
    assert "🕒 现在" in labels(r[-1])
    r = await zhang.press("现在")
    assert shown(r[0]).startswith(L("form.worklog.content"))

