"""In-process fake WeCom (企业微信) server for tests, on 127.0.0.1 (aiohttp).

It behaves like WeCom, limits included, so tests catch what the real one would do quietly::

    async with FakeWeCom() as fake:
        client = WeComClient(fake.corp_id, fake.secret, fake.agent_id, base_url=fake.base_url)
        await client.send_text("zhangsan", "你好")
        assert fake.texts("zhangsan") == ["你好"]

Server API: gettoken (tokens expire after ``token_ttl`` seconds of the fake's clock,
``advance()`` moves it), message/send (text over 2048 bytes is CUT and recorded in
``truncated``; a card with more than 6 buttons is refused; a user's 31st message in a
minute or 1001st in an hour is DROPPED with errcode 0 and recorded in ``dropped``),
message/update_template_card (single-use response codes, 60140 after), media/upload and
media/get, menu/create, and the group robot webhook/send (20 a minute per robot, 45009
after). Faults: ``fail_next(path, "45009" | "45033" | "-1" | "502" | ...)``, ``slow(path, s)``.

User side: ``post_callback(url, xml)`` / ``verify_url(url)`` encrypt and sign with
tests/wecom_reference.py, which shares no code with the bot's crypto; ``text_xml`` and the
other builders make the inner XML a real callback carries. Several instances behind a load
balancer: ``behind_balancer(url_a, url_b)``, then ``deliver(xml)`` sends each callback to the
next instance in turn (round robin) and ``redeliver()`` repeats the last one, as WeCom does
when an answer is slow (same MsgId, new timestamp and nonce), through the balancer again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from tests.wecom_reference import ReferenceCrypto

__all__ = [
    "DEFAULT_AES_KEY",
    "DEFAULT_AGENT_ID",
    "DEFAULT_CORP_ID",
    "DEFAULT_SECRET",
    "DEFAULT_TOKEN",
    "Call",
    "FakeWeCom",
    "Sent",
]

DEFAULT_CORP_ID = "ww1436e0e65a779aee"
DEFAULT_SECRET = "fake-app-secret-not-real"
DEFAULT_AGENT_ID = 1000002
DEFAULT_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
DEFAULT_AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"

MAX_TEXT_BYTES = 2048
MAX_CARD_BUTTONS = 6
PER_USER_MINUTE, PER_USER_HOUR = 30, 1000
ROBOT_PER_MINUTE = 20
MEDIA_MAX = {"image": 10 * 1024 * 1024, "file": 20 * 1024 * 1024, "voice": 2 * 1024 * 1024,
             "video": 10 * 1024 * 1024}
_FAULTS: dict[str, tuple[int, str]] = {
    "45009": (45009, "api freq out of limit"),
    "45033": (45033, "api concurrent out of limit"),
    "-1": (-1, "system busy"),
    "40014": (40014, "invalid access_token"),
    "42001": (42001, "access_token expired"),
    "60020": (60020, "not allow to access from your ip, hint: [fake], from ip: 127.0.0.1, "
                     "more info at https://open.work.weixin.qq.com/devtool/query?e=60020"),
    "81013": (81013, "user & party & tag all invalid"),
}
_BODY = web.RequestKey("fake_body", object)  # the parsed body, for the Call record
_NO_TOKEN_PATHS = frozenset({"/cgi-bin/gettoken", "/cgi-bin/webhook/send"})


class Call:
    """One recorded API request and the errcode it got (faults "502" and "html" record
    -502 and -200)."""

    __slots__ = ("body", "errcode", "params", "path")

    def __init__(self, path: str, params: dict[str, str], body: Any, errcode: int) -> None:
        self.path, self.params, self.body, self.errcode = path, params, body, errcode

    def __repr__(self) -> str:
        return f"Call({self.path!r}, errcode={self.errcode})"


@dataclass
class Sent:
    """One accepted message/send to one user, as WeCom stored it (text already cut)."""

    msgid: str
    touser: str
    msgtype: str
    payload: dict[str, Any]
    at: float
    delivered: bool = True
    response_code: str | None = None
    replaced_with: str | None = None  # update_template_card button.replace_name

    @property
    def text(self) -> str:
        return str(self.payload.get("content", ""))

    @property
    def button_keys(self) -> list[str]:
        return [str(b.get("key")) for b in self.payload.get("button_list", [])]


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def _ok(**extra: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **extra}


def _json(body: Any) -> web.Response:
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@dataclass
class _Fault:
    path: str | None
    kind: str
    remaining: int


@dataclass
class _Robot:
    sent: list[dict[str, Any]] = field(default_factory=list)
    times: deque[float] = field(default_factory=deque)


class FakeWeCom:
    """Fake WeCom server API on 127.0.0.1 plus a user-side callback sender."""

    def __init__(self, *, corp_id: str = DEFAULT_CORP_ID, secret: str = DEFAULT_SECRET,
                 agent_id: int = DEFAULT_AGENT_ID, token: str = DEFAULT_TOKEN,
                 aes_key: str = DEFAULT_AES_KEY, token_ttl: int = 7200,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.token, self.aes_key = token, aes_key
        self.token_ttl = token_ttl
        self.host, self.port = host, port
        self.crypto = ReferenceCrypto(token, aes_key, corp_id)
        self.offset = 0.0  # advance() moves the fake's clock
        self.calls: list[Call] = []
        self.tokens: dict[str, float] = {}  # access_token -> expiry (fake clock)
        self.messages: list[Sent] = []  # every accepted send, delivered or dropped
        self.truncated: list[tuple[Sent, int]] = []  # (stored message, bytes it had)
        self.dropped: list[Sent] = []
        self.unreachable: set[str] = set()  # users outside the app's visible range
        self.card_updates: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str, str]] = {}  # id -> (content, type, filename)
        self.menus: dict[int, list[dict[str, Any]]] = {}
        self.robots: dict[str, _Robot] = {}
        self._task_ids: set[str] = set()
        self._codes: dict[str, Sent | None] = {}  # response_code -> card; popped when used
        self._windows: dict[str, deque[float]] = {}  # user -> delivery times in the last hour
        self._faults: list[_Fault] = []
        self._delays: dict[str | None, float] = {}
        self._next_id = 1
        self._activity = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.callback_urls: list[str] = []  # the instances behind the balancer
        self.delivered_to: list[int] = []  # which instance got each callback
        self._last_xml: str | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeCom:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """For TAIQU_WECOM_API_BASE / WeComClient(base_url=...)."""
        return f"http://{self.host}:{self.port}"

    def robot_url(self, key: str) -> str:
        return f"{self.base_url}/cgi-bin/webhook/send?key={key}"

    # ------------------------------------------------------------------- clock
    def now(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock: tokens expire, rate windows slide."""
        self.offset += seconds

    # ---------------------------------------------------------------- faults
    def fail_next(self, path: str | None, kind: str | int, count: int = 1) -> None:
        """Fail the next `count` calls of `path` (e.g. "/cgi-bin/message/send"; None: any
        call but gettoken) with an errcode from _FAULTS, "502" (HTTP 502, plain body) or
        "html" (200 with a web page, as a misconfigured proxy answers)."""
        kind = str(kind)
        if kind not in ("502", "html") and kind not in _FAULTS:
            raise ValueError(f"unknown fault {kind!r}; use 502, html or one of "
                             f"{sorted(_FAULTS)}")
        self._faults.append(_Fault(path, kind, count))

    def slow(self, path: str | None, seconds: float) -> None:
        """Answer `path` (None: every path) after `seconds`; 0 removes the delay."""
        if seconds <= 0:
            self._delays.pop(path, None)
        else:
            self._delays[path] = seconds

    def clear_faults(self) -> None:
        self._faults.clear()
        self._delays.clear()

    def expire_tokens(self) -> None:
        """Every issued access_token is now expired (the next use gets 42001)."""
        for tok in self.tokens:
            self.tokens[tok] = self.now() - 1

    def _pick_fault(self, path: str) -> str | None:
        for fault in self._faults:
            if fault.path == path or (fault.path is None and path != "/cgi-bin/gettoken"):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.kind
        return None

    # ---------------------------------------------------------------- records
    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def sent(self, user: str) -> list[Sent]:
        """What `user` actually received (dropped messages left out), oldest first."""
        return [m for m in self.messages if m.touser == user and m.delivered]

    def texts(self, user: str) -> list[str]:
        return [m.text for m in self.sent(user) if m.msgtype == "text"]

    async def wait_for(self, user: str, count: int = 1, timeout: float = 10.0) -> list[Sent]:
        """Wait until `user` has received `count` messages."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.sent(user)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timeout: {user} has {len(self.sent(user))} messages, "
                                     f"waited for {count}: {self.sent(user)}")
            self._activity.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._activity.wait(), remaining)
        return self.sent(user)

    def _new_id(self, prefix: str) -> str:
        value = f"{prefix}{self._next_id}"
        self._next_id += 1
        return value

    # ------------------------------------------------------------------- HTTP
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        params = dict(request.query)
        handler = self._routes().get((request.method, path))
        if handler is None:
            return web.Response(status=404, text="404 page not found")
        delay = self._delays.get(path, self._delays.get(None, 0.0))
        if delay:
            await asyncio.sleep(delay)
        fault = self._pick_fault(path)
        if fault == "502":
            self.calls.append(Call(path, params, None, -502))
            return web.Response(status=502, text="502 Bad Gateway", content_type="text/plain")
        if fault == "html":
            self.calls.append(Call(path, params, None, -200))
            return web.Response(text="<html>portal</html>", content_type="text/html")
        try:
            if fault is not None:
                raise WeComError(*_FAULTS[fault])
            if path not in _NO_TOKEN_PATHS:
                self._check_token(params.get("access_token"))
            answer = await handler(request, params)
        except WeComError as exc:
            self.calls.append(Call(path, params, request.get(_BODY), exc.errcode))
            return _json({"errcode": exc.errcode, "errmsg": exc.errmsg})
        self.calls.append(Call(path, params, request.get(_BODY), 0))
        self._activity.set()
        return answer if isinstance(answer, web.StreamResponse) else _json(answer)

    def _routes(self) -> dict[tuple[str, str], Callable[[web.Request, dict[str, str]],
                                                         Awaitable[Any]]]:
        return {
            ("GET", "/cgi-bin/gettoken"): self._gettoken,
            ("POST", "/cgi-bin/message/send"): self._message_send,
            ("POST", "/cgi-bin/message/update_template_card"): self._update_card,
            ("POST", "/cgi-bin/media/upload"): self._media_upload,
            ("GET", "/cgi-bin/media/get"): self._media_get,
            ("POST", "/cgi-bin/menu/create"): self._menu_create,
            ("POST", "/cgi-bin/webhook/send"): self._webhook_send,
        }

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise WeComError(41001, "access_token missing")
        expiry = self.tokens.get(token)
        if expiry is None:
            raise WeComError(40014, "invalid access_token")
        if self.now() >= expiry:
            raise WeComError(42001, "access_token expired")

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise WeComError(47001, "data format error") from None
        if not isinstance(body, dict):
            raise WeComError(47001, "data format error")
        request[_BODY] = body
        return body

    # ---------------------------------------------------------------- methods
    async def _gettoken(self, request: web.Request, p: dict[str, str]) -> Any:
        if p.get("corpid") != self.corp_id:
            raise WeComError(40013, "invalid corpid")
        if p.get("corpsecret") != self.secret:
            raise WeComError(40001, "invalid secret")
        token = "fake-token-" + uuid.uuid4().hex
        self.tokens[token] = self.now() + self.token_ttl
        return _ok(access_token=token, expires_in=self.token_ttl)

    async def _message_send(self, request: web.Request, p: dict[str, str]) -> Any:
        body = await self._json_body(request)
        if body.get("agentid") != self.agent_id:
            raise WeComError(40056, "invalid agentid")
        msgtype = str(body.get("msgtype", ""))
        payload = body.get(msgtype)
        if not isinstance(payload, dict):
            raise WeComError(40008, "invalid message type")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if not users:
            raise WeComError(40031, "invalid userid list")
        invalid = [u for u in users if u in self.unreachable]
        if len(invalid) == len(users):
            raise WeComError(81013, "user & party & tag all invalid")
        extra = self._check_payload(msgtype, payload)
        msgid = self._new_id("msg")
        for user in users:
            if user not in invalid:
                self._deliver(Sent(msgid, user, msgtype, dict(payload), self.now(), **extra))
        answer = _ok(msgid=msgid, **({"invaliduser": "|".join(invalid)} if invalid else {}))
        if extra.get("response_code"):
            answer["response_code"] = extra["response_code"]
        return answer

    def _check_payload(self, msgtype: str, payload: dict[str, Any]) -> dict[str, Any]:
        if msgtype == "text":
            if not str(payload.get("content", "")):
                raise WeComError(44004, "empty content")
        elif msgtype in ("file", "image"):
            if payload.get("media_id") not in self.media:
                raise WeComError(40007, "invalid media_id")
        elif msgtype == "template_card":
            return self._check_card(payload)
        else:
            raise WeComError(40008, "invalid message type")
        return {}

    def _check_card(self, card: dict[str, Any]) -> dict[str, Any]:
        if card.get("card_type") != "button_interaction":
            raise WeComError(40058, "invalid card_type (the fake knows button_interaction)")
        buttons = card.get("button_list") or []
        if not 1 <= len(buttons) <= MAX_CARD_BUTTONS:
            raise WeComError(40058, f"button_list must have 1 to {MAX_CARD_BUTTONS} buttons")
        keys = [str(b.get("key", "")) for b in buttons]
        if len(set(keys)) != len(keys) or any(not k or len(k.encode()) > 1024 for k in keys):
            raise WeComError(40058, "button key empty, too long or duplicated")
        task_id = str(card.get("task_id", ""))
        if not task_id or task_id in self._task_ids:
            raise WeComError(40058, "task_id missing or already used")
        self._task_ids.add(task_id)
        return {"response_code": self._new_id("rc-")}

    def _deliver(self, msg: Sent) -> None:
        """Store a send as WeCom would: cut long text, drop over the per-user limits."""
        if msg.msgtype == "text":
            raw = msg.text.encode()
            if len(raw) > MAX_TEXT_BYTES:
                msg.payload["content"] = raw[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
                self.truncated.append((msg, len(raw)))
        window = self._windows.setdefault(msg.touser, deque())
        while window and window[0] <= msg.at - 3600:
            window.popleft()
        last_minute = sum(1 for t in window if t > msg.at - 60)
        if last_minute >= PER_USER_MINUTE or len(window) >= PER_USER_HOUR:
            msg.delivered = False  # WeCom answers errcode 0 and never delivers it
            self.dropped.append(msg)
        else:
            window.append(msg.at)
        if msg.response_code:
            self._codes[msg.response_code] = msg
        self.messages.append(msg)

    async def _update_card(self, request: web.Request, p: dict[str, str]) -> Any:
        body = await self._json_body(request)
        code = str(body.get("response_code", ""))
        if code not in self._codes:
            raise WeComError(60140, "response_code is used or expired")
        card = self._codes.pop(code)  # single use
        replace = (body.get("button") or {}).get("replace_name")
        if replace is None and not isinstance(body.get("template_card"), dict):
            raise WeComError(40058, "button.replace_name or template_card required")
        if card is not None:
            card.replaced_with = replace
        self.card_updates.append(body)
        return _ok(invaliduser=[])

    def issue_response_code(self, card: Sent | None = None) -> str:
        """A fresh, single-use response code as a tap event carries it."""
        code = self._new_id("rc-")
        self._codes[code] = card
        return code

    async def _media_upload(self, request: web.Request, p: dict[str, str]) -> Any:
        kind = p.get("type", "")
        if kind not in MEDIA_MAX:
            raise WeComError(40004, "invalid media type")
        form = await request.post()
        part = form.get("media")
        if not isinstance(part, web.FileField):
            raise WeComError(41009, "missing media")
        content = part.file.read()
        if not 5 <= len(content) <= MEDIA_MAX[kind]:
            raise WeComError(40006, "invalid media size")
        media_id = self._new_id("media-")
        self.media[media_id] = (content, part.content_type or "application/octet-stream",
                                part.filename or "")
        request[_BODY] = {"type": kind, "filename": part.filename}
        return _ok(type=kind, media_id=media_id, created_at=str(int(time.time())))

    def add_media(self, content: bytes, content_type: str = "image/jpeg",
                  filename: str = "photo.jpg") -> str:
        """Media a user sent (an image message's MediaId)."""
        media_id = self._new_id("media-")
        self.media[media_id] = (content, content_type, filename)
        return media_id

    async def _media_get(self, request: web.Request, p: dict[str, str]) -> Any:
        found = self.media.get(p.get("media_id", ""))
        if found is None:
            raise WeComError(40007, "invalid media_id")
        content, content_type, filename = found
        return web.Response(body=content, content_type=content_type, headers={
            "Content-disposition": f'attachment; filename="{filename}"'})

    async def _menu_create(self, request: web.Request, p: dict[str, str]) -> Any:
        body = await self._json_body(request)
        if p.get("agentid") != str(self.agent_id):
            raise WeComError(40056, "invalid agentid")
        buttons = body.get("button") or []
        if not 1 <= len(buttons) <= 3 or any(len(b.get("sub_button", [])) > 5 for b in buttons):
            raise WeComError(40016, "invalid button size")
        self.menus[self.agent_id] = buttons
        return _ok()

    async def _webhook_send(self, request: web.Request, p: dict[str, str]) -> Any:
        key = p.get("key", "")
        if not key:
            raise WeComError(93000, "invalid webhook url")
        body = await self._json_body(request)
        robot = self.robots.setdefault(key, _Robot())
        now = self.now()
        while robot.times and robot.times[0] <= now - 60:
            robot.times.popleft()
        if len(robot.times) >= ROBOT_PER_MINUTE:
            raise WeComError(45009, "api freq out of limit")
        robot.times.append(now)
        robot.sent.append(body)
        return _ok()

    # -------------------------------------------------------- user side (callbacks)
    def text_xml(self, user: str, content: str, *, msg_id: str | None = None,
                 create_time: int | None = None) -> str:
        return self._inner(user, "text", create_time, msg_id,
                           f"<Content>{escape(content)}</Content>")

    def image_xml(self, user: str, media_id: str, *, msg_id: str | None = None,
                  create_time: int | None = None) -> str:
        return self._inner(user, "image", create_time, msg_id,
                           f"<PicUrl><![CDATA[http://wework.qpic.cn/fake/{media_id}]]></PicUrl>"
                           f"<MediaId><![CDATA[{media_id}]]></MediaId>")

    def file_xml(self, user: str, media_id: str, *, msg_id: str | None = None,
                 create_time: int | None = None) -> str:
        """A file message: its name is not in the callback, media/get's header has it."""
        return self._inner(user, "file", create_time, msg_id,
                           f"<MediaId><![CDATA[{media_id}]]></MediaId>")

    def location_xml(self, user: str, latitude: float, longitude: float, label: str = "", *,
                     msg_id: str | None = None, create_time: int | None = None) -> str:
        return self._inner(user, "location", create_time, msg_id,
                           f"<Location_X>{latitude}</Location_X><Location_Y>{longitude}"
                           f"</Location_Y><Scale>15</Scale><Label>{escape(label)}</Label>")

    def event_xml(self, user: str, event: str, key: str = "", *,
                  create_time: int | None = None, extra: str = "") -> str:
        return self._inner(user, "event", create_time, None,
                           f"<Event><![CDATA[{event}]]></Event>"
                           f"<EventKey><![CDATA[{key}]]></EventKey>{extra}")

    def card_tap_xml(self, user: str, card: Sent, key: str, *,
                     create_time: int | None = None) -> str:
        """A tap on a button of a card the bot sent: a fresh single-use response code."""
        if key not in card.button_keys:
            raise AssertionError(f"no button {key!r} on the card; keys: {card.button_keys}")
        code = self.issue_response_code(card)
        return self.event_xml(user, "template_card_event", key, create_time=create_time,
                              extra=f"<TaskId><![CDATA[{card.payload['task_id']}]]></TaskId>"
                                    "<CardType><![CDATA[button_interaction]]></CardType>"
                                    f"<ResponseCode><![CDATA[{code}]]></ResponseCode>")

    def _inner(self, user: str, msg_type: str, create_time: int | None, msg_id: str | None,
               fields: str) -> str:
        if msg_type != "event" and msg_id is None:
            msg_id = str(10**18 + self._next_id)
            self._next_id += 1
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<FromUserName><![CDATA[{escape(user)}]]></FromUserName>"
                f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
                f"<MsgType><![CDATA[{msg_type}]]></MsgType>{fields}"
                + (f"<MsgId>{msg_id}</MsgId>" if msg_id else "")
                + f"<AgentID>{self.agent_id}</AgentID></xml>")

    def encrypt_callback(self, xml: str, *, timestamp: str | None = None,
                         nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        """(query, body) of the POST WeCom would make for the inner `xml`."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or uuid.uuid4().hex[:10]
        encrypt = self.crypto.encrypt(xml)
        query = {"msg_signature": self.crypto.sign(timestamp, nonce, encrypt),
                 "timestamp": timestamp, "nonce": nonce}
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>\n"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
                f"<AgentID><![CDATA[{self.agent_id}]]></AgentID>\n</xml>").encode()
        return query, body

    async def post_callback(self, url: str, xml: str, *, timestamp: str | None = None,
                            nonce: str | None = None,
                            query: dict[str, str] | None = None,
                            body: bytes | None = None) -> tuple[int, str]:
        """POST the callback for `xml` to the bot; `query`/`body` override parts of it
        (to tamper). Returns (HTTP status, response text)."""
        real_query, real_body = self.encrypt_callback(xml, timestamp=timestamp, nonce=nonce)
        target = f"{url}?{urlencode({**real_query, **(query or {})})}"
        async with aiohttp.ClientSession() as session, session.post(
                target, data=real_body if body is None else body,
                headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text()

    def behind_balancer(self, *urls: str) -> None:
        """The callback URL is a round-robin load balancer in front of these instances."""
        self.callback_urls = list(urls)

    async def deliver(self, xml: str) -> tuple[int, str]:
        """Send a callback through the balancer: the next instance in turn gets it."""
        self._last_xml = xml
        i = len(self.delivered_to) % len(self.callback_urls)
        self.delivered_to.append(i)
        return await self.post_callback(self.callback_urls[i], xml)

    async def redeliver(self) -> tuple[int, str]:
        """WeCom's retry of the last callback (its answer was slow): the same message,
        newly signed, through the balancer again."""
        assert self._last_xml is not None, "nothing delivered yet"
        return await self.deliver(self._last_xml)

    async def verify_url(self, url: str, echo: str | None = None) -> tuple[int, str, str]:
        """The URL-verification GET; returns (status, response text, the expected echo)."""
        echo = echo or str(uuid.uuid4().int)[:19]
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        echostr = self.crypto.encrypt(echo)
        query = {"msg_signature": self.crypto.sign(timestamp, nonce, echostr),
                 "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
        async with aiohttp.ClientSession() as session, session.get(
                f"{url}?{urlencode(query)}") as resp:
            return resp.status, await resp.text(), echo
