"""WeCom callback XML: every message kind we handle, entity attacks refused, dedupe keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.channels.wecom.crypto import SignedEnvelope, WeComCrypto, WeComCryptoError
from bot.channels.wecom.messages import (
    ClickEvent,
    EnterAgentEvent,
    ImageMessage,
    LocationMessage,
    MediaMessage,
    Message,
    MessageParseError,
    TemplateCardEvent,
    TextMessage,
    UnknownMessage,
    parse_envelope,
    parse_message,
    reply_envelope_xml,
)
from tests.fakewecom import FakeWeCom

HEAD = ("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>"
        "<FromUserName><![CDATA[zhangsan]]></FromUserName>"
        "<CreateTime>1764470000</CreateTime><AgentID>1000002</AgentID>")


def msg(body: str) -> str:
    return HEAD + body + "</xml>"


def test_text() -> None:
    m = parse_message(msg("<MsgType><![CDATA[text]]></MsgType>"
                          "<Content><![CDATA[记录巡视 3号台区 <&>]]></Content>"
                          "<MsgId>4561255354251345929</MsgId>"))
    assert m == TextMessage("zhangsan", "ww1436e0e65a779aee", 1764470000, 1000002,
                            "4561255354251345929", "记录巡视 3号台区 <&>")
    assert m.dedupe_key == "msg:4561255354251345929"


def test_text_of_the_tencent_sample() -> None:
    m = parse_message("<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun"
                      "</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType>"
                      "<Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID>"
                      "</xml>")
    assert isinstance(m, TextMessage)
    assert (m.from_user, m.content, m.msg_id, m.agent_id) == (
        "ChenJiaShun", "你好", "1456453720", 1000002)


def test_image() -> None:
    m = parse_message(msg("<MsgType><![CDATA[image]]></MsgType>"
                          "<PicUrl><![CDATA[http://wework.qpic.cn/x]]></PicUrl>"
                          "<MediaId><![CDATA[media_1]]></MediaId><MsgId>77</MsgId>"))
    assert isinstance(m, ImageMessage)
    assert (m.media_id, m.pic_url, m.dedupe_key) == ("media_1", "http://wework.qpic.cn/x",
                                                     "msg:77")


def test_location_x_is_latitude_y_is_longitude() -> None:
    m = parse_message(msg("<MsgType><![CDATA[location]]></MsgType>"
                          "<Location_X>31.2304</Location_X><Location_Y>121.4737</Location_Y>"
                          "<Scale>15</Scale><Label><![CDATA[上海市黄浦区]]></Label>"
                          "<MsgId>78</MsgId>"))
    assert isinstance(m, LocationMessage)
    assert (m.latitude, m.longitude, m.scale, m.label) == (31.2304, 121.4737, 15, "上海市黄浦区")
    with pytest.raises(MessageParseError):
        parse_message(msg("<MsgType>location</MsgType><Location_X>121.4</Location_X>"
                          "<Location_Y>nan</Location_Y><MsgId>79</MsgId>"))


@pytest.mark.parametrize("kind", ["voice", "video", "file"])
def test_voice_video_file_are_kind_only(kind: str) -> None:
    m = parse_message(msg(f"<MsgType>{kind}</MsgType><MediaId>m</MediaId><MsgId>80</MsgId>"))
    assert isinstance(m, MediaMessage)
    assert m.kind == kind


def test_events_and_their_dedupe_keys() -> None:
    enter = parse_message(msg("<MsgType>event</MsgType><Event>enter_agent</Event>"
                              "<EventKey></EventKey>"))
    assert isinstance(enter, EnterAgentEvent)
    assert enter.msg_id is None
    assert enter.dedupe_key == "evt:zhangsan:1764470000:enter_agent"

    click = parse_message(msg("<MsgType>event</MsgType><Event>click</Event>"
                              "<EventKey><![CDATA[menu_todo]]></EventKey>"))
    assert click == ClickEvent("zhangsan", "ww1436e0e65a779aee", 1764470000, 1000002, None,
                               "menu_todo")
    assert click.dedupe_key == "evt:zhangsan:1764470000:click:menu_todo"

    card = parse_message(msg(
        "<MsgType>event</MsgType><Event>template_card_event</Event>"
        "<EventKey><![CDATA[save]]></EventKey><TaskId><![CDATA[t-1]]></TaskId>"
        "<CardType><![CDATA[button_interaction]]></CardType>"
        "<ResponseCode><![CDATA[rc-abc]]></ResponseCode>"))
    assert isinstance(card, TemplateCardEvent)
    assert (card.event_key, card.task_id, card.response_code, card.card_type) == (
        "save", "t-1", "rc-abc", "button_interaction")
    assert card.dedupe_key == "evt:zhangsan:1764470000:template_card_event:save:t-1"


def test_event_dedupe_keys_differ_where_the_taps_differ() -> None:
    def card(key: str, task: str, when: int = 1764470000, who: str = "zhangsan") -> str:
        return parse_message(
            f"<xml><FromUserName>{who}</FromUserName><CreateTime>{when}</CreateTime>"
            f"<MsgType>event</MsgType><Event>template_card_event</Event><EventKey>{key}"
            f"</EventKey><TaskId>{task}</TaskId><ResponseCode>r</ResponseCode></xml>").dedupe_key

    keys = {card("a", "t1"), card("b", "t1"), card("a", "t2"), card("a", "t1", 1764470001),
            card("a", "t1", who="lisi")}
    assert len(keys) == 5
    assert card("a", "t1") == card("a", "t1")  # a redelivery is the same


def test_unknown_types_and_events() -> None:
    m = parse_message(msg("<MsgType>link</MsgType><MsgId>81</MsgId>"))
    assert isinstance(m, UnknownMessage)
    assert m.msg_type == "link"
    ev = parse_message(msg("<MsgType>event</MsgType><Event>subscribe</Event>"))
    assert isinstance(ev, UnknownMessage)
    assert (ev.event, ev.dedupe_key) == ("subscribe", "evt:zhangsan:1764470000:event:subscribe")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY a "lol">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<xml><ToUserName>ww1</ToUserName><Encrypt>&d;</Encrypt><AgentID>1</AgentID></xml>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><FromUserName>a</FromUserName><MsgType>text</MsgType><Content>&x;</Content></xml>"""
PLAIN_DOCTYPE = "<!DOCTYPE xml><xml><ToUserName>a</ToUserName><Encrypt>QUJD</Encrypt></xml>"


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL, PLAIN_DOCTYPE])
def test_doctype_and_entities_are_refused(payload: str) -> None:
    with pytest.raises(MessageParseError):
        parse_envelope(payload.encode(), max_bytes=65536)
    with pytest.raises(MessageParseError):
        parse_message(payload)


def test_envelope() -> None:
    body = (b"<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n"
            b"<Encrypt><![CDATA[QUJD+/==]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n"
            b"</xml>")
    env = parse_envelope(body, max_bytes=65536)
    assert (env.to_user, env.agent_id, env.encrypt) == ("ww1436e0e65a779aee", "1000002",
                                                        "QUJD+/==")
    with pytest.raises(MessageParseError, match="over"):
        parse_envelope(body, max_bytes=len(body) - 1)
    for broken in (b"", b"<xml>", b"<xml><ToUserName>a</ToUserName></xml>",
                   b"<notxml><Encrypt>QUJD</Encrypt></notxml>", "<xml>\xff".encode("latin-1")):
        with pytest.raises(MessageParseError):
            parse_envelope(broken, max_bytes=65536)


def test_missing_required_fields() -> None:
    with pytest.raises(MessageParseError, match="FromUserName"):
        parse_message("<xml><MsgType>text</MsgType></xml>")
    with pytest.raises(MessageParseError, match="MediaId"):
        parse_message(msg("<MsgType>image</MsgType><MsgId>1</MsgId>"))
    with pytest.raises(MessageParseError, match="CreateTime"):
        parse_message("<xml><FromUserName>a</FromUserName><CreateTime>soon</CreateTime>"
                      "<MsgType>text</MsgType></xml>")


def test_reply_envelope_refuses_what_would_break_its_xml() -> None:
    ok = SignedEnvelope("QUJD", "ab", "1411525903", "461056294")
    assert "<Nonce><![CDATA[461056294]]></Nonce>" in reply_envelope_xml(ok)
    with pytest.raises(ValueError):
        reply_envelope_xml(SignedEnvelope("QUJD", "ab", "1", "x]]><Evil/>"))
    with pytest.raises(ValueError):
        reply_envelope_xml(SignedEnvelope("QUJD", "ab", "1<", "n"))


# --- a callback from the fake WeCom (independent crypto) through the bot's code ---------------
class Receiver:
    """A minimal callback endpoint made of the bot's crypto and parser, standing in for the
    channel's server (which comes later): 403 on any crypto error, records what it read."""

    def __init__(self, fake: FakeWeCom) -> None:
        self.crypto = WeComCrypto(fake.token, fake.aes_key, fake.corp_id)
        self.got: list[Message] = []

    async def handle(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            if request.method == "GET":
                return web.Response(text=self.crypto.verify_url(
                    q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]))
            env = parse_envelope(await request.read(), max_bytes=65536)
            xml = self.crypto.decrypt_msg(q["msg_signature"], q["timestamp"], q["nonce"],
                                          env.encrypt)
        except (WeComCryptoError, MessageParseError, KeyError):
            return web.Response(status=403)
        self.got.append(parse_message(xml))
        return web.Response(text="")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[FakeWeCom, Receiver, str]]:
    fake = FakeWeCom()
    rec = Receiver(fake)
    app = web.Application()
    app.router.add_route("*", "/wecom/callback", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/wecom/callback"
    yield fake, rec, url
    await runner.cleanup()


async def test_fake_callbacks_decrypt_and_parse_with_the_bots_code(
        receiver: tuple[FakeWeCom, Receiver, str]) -> None:
    fake, rec, url = receiver
    status, text, echo = await fake.verify_url(url)
    assert (status, text) == (200, echo)
    xmls = [fake.text_xml("zhangsan", "记录巡视 3号台区 <b>&</b>", msg_id="1001"),
            fake.image_xml("zhangsan", "media-9", msg_id="1002"),
            fake.location_xml("zhangsan", 31.23, 121.47, "城东"),
            fake.event_xml("zhangsan", "enter_agent"),
            fake.event_xml("zhangsan", "click", "menu_todo")]
    for xml in xmls:
        assert (await fake.post_callback(url, xml))[0] == 200
    first = rec.got[0]
    assert isinstance(first, TextMessage)
    assert (first.content, first.msg_id) == ("记录巡视 3号台区 <b>&</b>", "1001")
    assert [type(m).__name__ for m in rec.got[1:]] == [
        "ImageMessage", "LocationMessage", "EnterAgentEvent", "ClickEvent"]
    loc = rec.got[2]
    assert isinstance(loc, LocationMessage)
    assert (loc.latitude, loc.longitude, loc.label) == (31.23, 121.47, "城东")


async def test_tampered_fake_callbacks_get_403(receiver: tuple[FakeWeCom, Receiver, str]) -> None:
    fake, rec, url = receiver
    xml = fake.text_xml("zhangsan", "hi")
    assert (await fake.post_callback(url, xml, query={"msg_signature": "0" * 40}))[0] == 403
    assert (await fake.post_callback(url, xml, query={"timestamp": "1"}))[0] == 403
    assert (await fake.post_callback(url, xml, body=BILLION_LAUGHS.encode()))[0] == 403
    other_corp = FakeWeCom(corp_id="ww0000000000000000")  # same token and key, other corp
    assert (await other_corp.post_callback(url, xml))[0] == 403
    assert rec.got == []
