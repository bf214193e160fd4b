"""Async WeCom (企业微信) server API client on httpx: access_token, messages, button cards,
media, the app menu.

Errors are WeComAPIError with the errcode; subclasses say what the caller should do:
WeComRetryLater (limits, busy, 5xx, network), WeComUnreachable (81013), WeComIPNotTrusted
(60020, a configuration error), WeComResponseCodeSpent (60140). Message text, the secret
and the access_token are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bot.channels.wecom.config import DEFAULT_API_BASE, WeComSettings

log = logging.getLogger(__name__)

# WeCom's own limits (developer docs 90236, 94888, 90253, 90231), not our rules.
MAX_TEXT_BYTES = 2048  # text.content; WeCom silently cuts what is longer
MAX_CARD_BUTTONS = 6  # button_interaction cards
MAX_BUTTON_KEY_BYTES = 1024
MEDIA_MAX_BYTES: Mapping[str, int] = {"image": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
MEDIA_MIN_BYTES = 5
MENU_MAX_TOP, MENU_MAX_SUB = 3, 5
_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")

TOKEN_ERRCODES = frozenset({40014, 42001, 42007, 42009})  # invalid/expired: refetch once
RETRY_LATER_ERRCODES = frozenset({45009, 45033, -1})  # over a limit / too concurrent / busy
UNREACHABLE_ERRCODE = 81013  # user outside the app's visible range, or gone
IP_NOT_TRUSTED_ERRCODE = 60020
RESPONSE_CODE_SPENT_ERRCODE = 60140  # update_template_card code used or expired
_FROM_IP = re.compile(r"from ip: ?([0-9A-Fa-f.:]+)")
_SECRET_PARAM = re.compile(r"((?:access_token|corpsecret)=)[^&\s\"']+")

MediaKind = Literal["file", "image"]


class WeComAPIError(Exception):
    retry_later = False

    def __init__(self, errcode: int, errmsg: str, *, http_status: int | None = None) -> None:
        super().__init__(f"WeCom errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status


class WeComRetryLater(WeComAPIError):
    """Over a WeCom limit, busy, HTTP 5xx or a network fault: try again with back-off."""

    retry_later = True


class WeComUnreachable(WeComAPIError):
    """The user is outside the app's visible range or has left: like a blocked bot."""


class WeComIPNotTrusted(WeComAPIError):
    """This server's IP is not in the app's 企业可信IP list: an admin must add it."""


class WeComResponseCodeSpent(WeComAPIError):
    """The card's response_code was used or expired: nothing more to do."""


class _RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO, and WeCom wants the access_token (gettoken:
    the app secret) in the query string; blank them out whoever turns that log on."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message or "corpsecret=" in message:
            record.msg, record.args = _SECRET_PARAM.sub(r"\1***", message), None
        return True


_REDACT = _RedactSecrets()


def _redact_httpx_log() -> None:
    logger = logging.getLogger("httpx")
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)


def classify(errcode: int, errmsg: str, http_status: int | None = None) -> WeComAPIError:
    if errcode in RETRY_LATER_ERRCODES:
        return WeComRetryLater(errcode, errmsg, http_status=http_status)
    if errcode == UNREACHABLE_ERRCODE:
        return WeComUnreachable(errcode, errmsg, http_status=http_status)
    if errcode == IP_NOT_TRUSTED_ERRCODE:
        return WeComIPNotTrusted(errcode, errmsg, http_status=http_status)
    if errcode == RESPONSE_CODE_SPENT_ERRCODE:
        return WeComResponseCodeSpent(errcode, errmsg, http_status=http_status)
    return WeComAPIError(errcode, errmsg, http_status=http_status)


def split_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> list[str]:
    """Chunks of at most `max_bytes` UTF-8 bytes, cut at a line break when one is in the
    second half of the chunk, else at a character boundary; never inside a character."""
    if max_bytes < 4:  # one character can take 4 bytes
        raise ValueError("max_bytes must be at least 4")
    chunks: list[str] = []
    rest = text
    while len(rest.encode()) > max_bytes:
        fits = rest.encode()[:max_bytes].decode("utf-8", "ignore")  # drops a cut character
        cut = len(fits)
        line = rest.rfind("\n", 0, cut)
        if line >= max(cut // 2, 1):
            cut = line
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not chunks:
        chunks.append(rest)
    return chunks


@dataclass(frozen=True)
class CardButton:
    key: str  # comes back as the tap event's EventKey
    text: str
    style: int = 1  # 1 blue, 2 grey, 3 red, 4 text-only


@dataclass(frozen=True)
class SentMessage:
    msgid: str
    response_code: str | None = None  # cards: for update_template_card, usable once
    task_id: str | None = None  # cards: comes back as the tap event's TaskId


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str
    filename: str = ""  # from Content-Disposition, when WeCom names the file


def new_task_id() -> str:
    return uuid.uuid4().hex  # 32 characters of [0-9a-f]: unique per app as WeCom requires


def _check_buttons(buttons: Sequence[CardButton]) -> None:
    if not 1 <= len(buttons) <= MAX_CARD_BUTTONS:
        raise ValueError(f"a WeCom button card takes 1 to {MAX_CARD_BUTTONS} buttons "
                         f"(got {len(buttons)}); number the rest in the text instead")
    keys = [b.key for b in buttons]
    if len(set(keys)) != len(keys):
        raise ValueError("button keys must be unique within a card")
    for key in keys:
        if not key or len(key.encode()) > MAX_BUTTON_KEY_BYTES:
            raise ValueError(f"a button key must be 1 to {MAX_BUTTON_KEY_BYTES} bytes")


class WeComClient:
    """One per app. The access_token is cached until `refresh_margin` seconds before WeCom
    says it expires, and fetched by one caller at a time while the others wait for it."""

    def __init__(self, corp_id: str, secret: str, agent_id: int, *,
                 base_url: str = DEFAULT_API_BASE, timeout: float = 10.0,
                 refresh_margin: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._refresh_margin = refresh_margin
        self._now = monotonic
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                       transport=transport)
        self._token: str | None = None
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()
        self._ip_warned: set[str] = set()
        _redact_httpx_log()

    @classmethod
    def from_settings(cls, settings: WeComSettings, **kwargs: Any) -> WeComClient:
        return cls(settings.corp_id, settings.secret, settings.agent_id,
                   base_url=settings.api_base, timeout=settings.api_timeout_seconds,
                   refresh_margin=settings.token_refresh_margin_seconds, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> WeComClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ access_token
    async def access_token(self) -> str:
        async with self._token_lock:
            if self._token is None or self._now() >= self._token_until:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        started = self._now()
        data = self._checked(await self._send(
            "GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id,
                                                "corpsecret": self._secret}))
        token, expires_in = data.get("access_token"), data.get("expires_in", 7200)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise WeComAPIError(-2, "gettoken answered without an access_token")
        # Never cache for less than half the lifetime, however large the margin is set.
        self._token = token
        self._token_until = started + max(expires_in - self._refresh_margin, expires_in / 2)
        log.debug("WeCom access_token fetched, valid %.0f s", expires_in)

    async def _drop_token(self, token: str) -> None:
        async with self._token_lock:
            if self._token == token:  # another caller may already have refetched
                self._token = None

    # ------------------------------------------------------------------------- HTTP
    async def _send(self, method: str, path: str, *, params: Mapping[str, Any],
                    json: Any = None, files: Any = None) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, params=params, json=json,
                                            files=files)
        except httpx.TransportError as exc:  # str(exc) may carry the URL and its token
            raise WeComRetryLater(-1, f"network: {type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise WeComRetryLater(-1, f"HTTP {resp.status_code}", http_status=resp.status_code)
        if resp.status_code != 200:
            raise WeComAPIError(-2, f"HTTP {resp.status_code}", http_status=resp.status_code)
        return resp

    def _checked(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            raise WeComRetryLater(-1, "answer is not JSON", http_status=resp.status_code) \
                from None
        errcode = data.get("errcode", 0) if isinstance(data, dict) else None
        if not isinstance(errcode, int):
            raise WeComRetryLater(-1, "answer is not a WeCom JSON object")
        if errcode:
            err = classify(errcode, str(data.get("errmsg", "")))
            if isinstance(err, WeComIPNotTrusted):
                self._warn_ip(err.errmsg)
            raise err
        return data

    def _warn_ip(self, errmsg: str) -> None:
        found = _FROM_IP.search(errmsg)
        ip = found.group(1) if found else "this server's public IP"
        if ip in self._ip_warned:
            return
        self._ip_warned.add(ip)
        log.error("WeCom refuses API calls from %s (errcode 60020): in the WeCom admin console "
                  "open 应用管理 → this app (AgentId %s) → 企业可信IP and add %s", ip,
                  self.agent_id, ip)

    async def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    json: Any = None, files: Any = None) -> httpx.Response:
        """An authenticated call; on a stale token, one refetch and one retry."""
        for attempt in (1, 2):
            token = await self.access_token()
            resp = await self._send(method, path, params={**(params or {}), "access_token": token},
                                    json=json, files=files)
            if not _is_json(resp):
                return resp
            try:
                self._checked(resp)
            except WeComAPIError as exc:
                if exc.errcode in TOKEN_ERRCODES and attempt == 1:
                    await self._drop_token(token)
                    continue
                raise
            return resp
        raise AssertionError("unreachable")

    async def _post(self, path: str, body: Any, **params: Any) -> dict[str, Any]:
        return self._checked(await self._call("POST", path, params=params, json=body))

    # --------------------------------------------------------------------- messages
    async def _message(self, to_user: str, msgtype: str, payload: Any) -> dict[str, Any]:
        # One user per send: WeCom answers 81013 when all recipients are unreachable (for
        # several it would answer 0 and list them in invaliduser).
        return await self._post("/cgi-bin/message/send", {
            "touser": to_user, "msgtype": msgtype, "agentid": self.agent_id,
            msgtype: payload})

    async def send_text(self, to_user: str, content: str) -> SentMessage:
        """One text message. Over MAX_TEXT_BYTES is the caller's error (WeCom would cut it
        silently): split it first with split_text."""
        size = len(content.encode())
        if not 0 < size <= MAX_TEXT_BYTES:
            raise ValueError(f"WeCom text must be 1 to {MAX_TEXT_BYTES} UTF-8 bytes "
                             f"(got {size}); split it with split_text")
        data = await self._message(to_user, "text", {"content": content})
        return SentMessage(str(data.get("msgid", "")))

    async def send_button_card(self, to_user: str, *, title: str,
                               buttons: Sequence[CardButton], desc: str = "",
                               sub_title: str = "",
                               task_id: str | None = None) -> SentMessage:
        """A template_card of type button_interaction; a tap comes back as a
        template_card_event with the button's key, the task_id and a response_code."""
        _check_buttons(buttons)
        task_id = task_id or new_task_id()
        if not _TASK_ID.fullmatch(task_id):
            raise ValueError("task_id must be 1-128 characters of 0-9 A-Z a-z _ - @")
        card = {
            "card_type": "button_interaction",
            "main_title": {"title": title, "desc": desc},
            "task_id": task_id,
            "button_list": [{"text": b.text, "style": b.style, "key": b.key} for b in buttons],
        }
        if sub_title:
            card["sub_title_text"] = sub_title
        data = await self._message(to_user, "template_card", card)
        return SentMessage(str(data.get("msgid", "")), data.get("response_code"), task_id)

    async def update_template_card(self, userids: Sequence[str], response_code: str, *,
                                   replace_name: str | None = None,
                                   card: Mapping[str, Any] | None = None) -> None:
        """After a tap: replace the buttons with one grey label (`replace_name`) or the whole
        card. A response_code works once (WeComResponseCodeSpent afterwards)."""
        if (replace_name is None) == (card is None):
            raise ValueError("give exactly one of replace_name and card")
        body: dict[str, Any] = {"userids": list(userids), "agentid": self.agent_id,
                                "response_code": response_code}
        if replace_name is not None:
            body["button"] = {"replace_name": replace_name}
        else:
            body["template_card"] = dict(card or {})
        await self._post("/cgi-bin/message/update_template_card", body)

    # ------------------------------------------------------------------------ media
    async def upload_media(self, kind: MediaKind, filename: str, content: bytes,
                           content_type: str = "application/octet-stream") -> str:
        """A media_id, valid 3 days, for send_file / send_image."""
        limit = MEDIA_MAX_BYTES[kind]
        if not MEDIA_MIN_BYTES <= len(content) <= limit:
            raise ValueError(f"WeCom {kind} media must be {MEDIA_MIN_BYTES} bytes to "
                             f"{limit // (1024 * 1024)} MB (got {len(content)} bytes)")
        resp = await self._call("POST", "/cgi-bin/media/upload", params={"type": kind},
                                files={"media": (filename, content, content_type)})
        media_id = self._checked(resp).get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeComAPIError(-2, "media/upload answered without a media_id")
        return media_id

    async def send_file(self, to_user: str, media_id: str) -> SentMessage:
        data = await self._message(to_user, "file", {"media_id": media_id})
        return SentMessage(str(data.get("msgid", "")))

    async def send_image(self, to_user: str, media_id: str) -> SentMessage:
        data = await self._message(to_user, "image", {"media_id": media_id})
        return SentMessage(str(data.get("msgid", "")))

    async def get_media(self, media_id: str) -> Media:
        """Download what a user sent (an image's MediaId expires after 3 days)."""
        resp = await self._call("GET", "/cgi-bin/media/get", params={"media_id": media_id})
        if _is_json(resp):
            raise WeComAPIError(-2, "media/get answered JSON instead of the file")
        return Media(resp.content, resp.headers.get("content-type", "application/octet-stream"),
                     _disposition_filename(resp.headers.get("content-disposition", "")))

    # ------------------------------------------------------------------------- menu
    async def create_menu(self, buttons: Sequence[Mapping[str, Any]]) -> None:
        """The app menu: up to 3 top-level entries with up to 5 sub-entries each."""
        if not 1 <= len(buttons) <= MENU_MAX_TOP:
            raise ValueError(f"a WeCom app menu has 1 to {MENU_MAX_TOP} top-level entries")
        if any(len(b.get("sub_button", [])) > MENU_MAX_SUB for b in buttons):
            raise ValueError(f"a WeCom menu entry has at most {MENU_MAX_SUB} sub-entries")
        await self._post("/cgi-bin/menu/create", {"button": [dict(b) for b in buttons]},
                         agentid=self.agent_id)


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)")
_FILENAME = re.compile(r'filename\s*=\s*"?([^";]+)"?')


def _disposition_filename(header: str) -> str:
    """attachment; filename="a.xlsx" (or RFC 5987 filename*=UTF-8''%E6%AC%A0.xlsx) -> name."""
    from urllib.parse import unquote

    found = _FILENAME_STAR.search(header)
    if found:
        return unquote(found.group(1).strip())
    found = _FILENAME.search(header)
    if not found:
        return ""
    name = found.group(1).strip()
    try:  # raw UTF-8 in the header arrives as latin-1 characters
        return name.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def _is_json(resp: httpx.Response) -> bool:
    kind = resp.headers.get("content-type", "")
    # media/get answers errors as JSON, sometimes labelled text/plain.
    return kind.startswith("application/json") or (
        kind.startswith("text/plain") and resp.content[:1] == b"{")
