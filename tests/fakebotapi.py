"""In-process fake Telegram Bot API server for end-to-end tests.

The real PTB ``Application`` talks to it over HTTP on 127.0.0.1 (long polling)::

    async with FakeBotAPI() as fake:
        app = (
            ApplicationBuilder().token(TOKEN)
            .base_url(fake.base_url).base_file_url(fake.base_file_url).build()
        )
        async with run_polling(app):
            msgs = await fake.reply_to(42, "/start")

State (updates, chats, messages, files, commands) is kept per bot token. The user-side
helpers (``user_sends``, ``press``, ``sent``, ``wait_for`` ...) act on ``default_token``
unless ``token=`` is given; ``fake.bot(token)`` returns the per-token :class:`FakeBot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "Call",
    "FakeBot",
    "FakeBotAPI",
    "UploadedFile",
    "build_echo_app",
    "run_polling",
]

DEFAULT_TOKEN = "123456789:TEST-fake-token"
BOT_USERNAME = "taiqu_test_bot"
BOT_FIRST_NAME = "台区助手"
MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
IDLE_SECONDS = 0.15
TOAST_ONLY_IDLE = 0.5  # see _respond: a toast is often followed by a send or an edit

# Parameters that are plain strings on the wire (never JSON-decoded from form data).
_RAW_KEYS = frozenset(
    [
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "file_id",
        "action",
        "url",
        "inline_message_id",
        "language_code",
        "emoji",
        "business_connection_id",
        "message_effect_id",
        "title",
        "description",
        "short_description",
        "name",
        "query",
        "document",
        "photo",
        "video",
        "audio",
        "voice",
        "animation",
        "sticker",
        "thumbnail",
        "filename",
        "secret_token",
        "ip_address",
        "first_name",
        "last_name",
        "username",
    ]
)
# Methods that ``fail_next(None, ...)`` / ``fail_ratio(None, ...)`` never hit (bootstrap/polling).
_NOT_FAILED_BY_WILDCARD = frozenset(
    {"getUpdates", "getMe", "deleteWebhook", "setWebhook", "getWebhookInfo", "close", "logOut"}
)
# What Telegram's broadcast limit counts (the sends the bot makes).
_BROADCASTS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
_FAULT_KINDS = frozenset({"400", "403", "429", "500", "502", "lost", "timeout"})
# Faults after which the request WAS carried out (the message is in the chat): only the answer
# goes missing, as when a connection drops or the client times out after Telegram accepted it.
_ACCEPTED_FAULTS = frozenset({"lost", "timeout"})
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")


class Call(NamedTuple):
    """One recorded Bot API request."""

    method: str
    params: dict[str, Any]
    ok: bool
    at: float = 0.0  # time.monotonic() when the fake took the request (send-rate tests)


@dataclass
class UploadedFile:
    """A file part received in a multipart request."""

    filename: str | None
    content: bytes
    content_type: str | None


class FakeAPIError(Exception):
    """Raised by a method implementation to answer with ``ok: false``."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def response(self) -> web.Response:
        """Render as Telegram does: HTTP status == error_code, JSON body."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return _json_response(body, status=self.error_code)


def _bad_request(description: str) -> FakeAPIError:
    return FakeAPIError(400, f"Bad Request: {description}")


def _json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_form_value(key: str, value: str) -> Any:
    if key in _RAW_KEYS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int_param(params: dict[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        raise _bad_request(f"{key} is required")
    try:
        return int(value)
    except (TypeError, ValueError):
        if key == "chat_id":
            raise _bad_request("chat not found") from None
        raise _bad_request(f"invalid {key}") from None


def _buttons(record: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Yield ``(text, button, inline)`` for every keyboard button of a bot message."""
    markup = record.get("reply_markup")
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard") or []:
        for btn in row:
            yield str(btn.get("text", "")), btn, True
    for row in markup.get("keyboard") or []:
        for btn in row:
            button = btn if isinstance(btn, dict) else {"text": str(btn)}
            yield str(button.get("text", "")), button, False


def _describe(records: Iterable[dict[str, Any]]) -> str:
    lines = []
    for rec in records:
        labels = [text for text, _, _ in _buttons(rec)]
        body = rec.get("text") if rec.get("text") is not None else rec.get("caption")
        extra = f" buttons={labels}" if labels else ""
        lines.append(f"  #{rec['message_id']} [{rec['method']}] {body!r}{extra}")
    return "\n".join(lines) or "  (none)"


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str


@dataclass
class _Chat:
    id: int
    first_name: str = "张三"
    username: str | None = None
    user_id: int | None = None
    next_message_id: int = 1
    bot_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    user_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    last_activity: float = 0.0

    def new_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid

    def api_chat(self) -> dict[str, Any]:
        if self.id < 0:
            return {"id": self.id, "type": "group", "title": f"测试群{-self.id}"}
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            chat["username"] = self.username
        return chat

    def api_user(self) -> dict[str, Any]:
        uid = self.user_id if self.user_id is not None else (self.id if self.id > 0 else 1000)
        user: dict[str, Any] = {
            "id": uid,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": "zh-hans",
        }
        if self.username:
            user["username"] = self.username
        return user


def _wake(waiters: set[asyncio.Future[None]]) -> None:
    for fut in list(waiters):
        if not fut.done():
            fut.set_result(None)


async def _wait(waiters: set[asyncio.Future[None]], timeout: float) -> bool:
    """Wait until ``_wake(waiters)`` or timeout; True if woken."""
    if timeout <= 0:
        return False
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.add(fut)
    try:
        await asyncio.wait_for(fut, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        waiters.discard(fut)


class FakeBot:
    """State of one bot token: update queue, chats, messages, files, commands."""

    def __init__(self, api: FakeBotAPI, token: str) -> None:
        self.api = api
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else zlib.crc32(token.encode()) or 1
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 1
        self.chats: dict[int, _Chat] = {}
        self.files: dict[str, _StoredFile] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.chat_actions: list[dict[str, Any]] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_posts: list[tuple[int, int]] = []  # (update_id, HTTP status) per POST
        self.delivered: dict[int, dict[str, Any]] = {}
        self.webhook_allowed: Any = None
        self._delivery: asyncio.Task[None] | None = None
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._next_callback_id = 1
        self._next_file = 1
        self._poll_generation = 0
        self._update_waiters: set[asyncio.Future[None]] = set()
        self._activity_waiters: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------ helpers
    @property
    def bot_user(self) -> dict[str, Any]:
        """The ``from`` user of bot messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    def chat(self, chat_id: int) -> _Chat:
        """Get (or lazily create) the chat state."""
        chat_id = int(chat_id)
        if chat_id not in self.chats:
            self.chats[chat_id] = _Chat(chat_id)
        return self.chats[chat_id]

    def _touch(self, chat: _Chat) -> None:
        chat.last_activity = asyncio.get_running_loop().time()
        _wake(self._activity_waiters)

    def _queue(self, payload: dict[str, Any]) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        self.updates.append({"update_id": update_id, **payload})
        _wake(self._update_waiters)
        self._deliver_soon()
        return update_id

    # ---------------------------------------------------------------- webhook
    # With a webhook set, Telegram POSTs each update (JSON, the secret token in a header) to
    # the URL, in order, and keeps an update until it gets a 2xx, retrying after a pause.
    WEBHOOK_RETRY_SECONDS = 0.05

    def _deliver_soon(self) -> None:
        if self.webhook_url and self.updates and (self._delivery is None
                                                  or self._delivery.done()):
            self._delivery = asyncio.get_running_loop().create_task(self._deliver())

    async def _post(self, update: dict[str, Any]) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} \
            if self.webhook_secret else {}
        try:
            async with aiohttp.ClientSession() as session, session.post(
                    self.webhook_url, json=update, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0  # nobody listening: Telegram tries again later
        self.webhook_posts.append((update["update_id"], status))
        return status

    async def _deliver(self) -> None:
        while self.webhook_url and self.updates and not self.api.closing:
            if 200 <= await self._post(self.updates[0]) < 300:
                done = self.updates.pop(0)
                self.delivered[done["update_id"]] = done
            else:
                await asyncio.sleep(self.WEBHOOK_RETRY_SECONDS)

    async def redeliver(self, update_id: int) -> int:
        """POST an update already delivered once more, as Telegram does when its 200 got
        lost; returns the HTTP status."""
        return await self._post(dict(self.delivered[update_id]))

    def wake_pollers(self) -> None:
        """Release every pending getUpdates (used on shutdown)."""
        _wake(self._update_waiters)

    def add_file(
        self,
        content: bytes,
        file_name: str | None = None,
        mime_type: str | None = None,
        *,
        file_id: str | None = None,
        kind: str = "documents",
    ) -> str:
        """Register downloadable bytes; returns the file_id (getFile + file URL serve it)."""
        n = self._next_file
        self._next_file += 1
        file_id = file_id or f"{kind}-file-{n}"
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        elif kind == "photos":
            suffix = ".jpg"
        self.files[file_id] = _StoredFile(
            file_id=file_id,
            file_unique_id=f"u{zlib.crc32(file_id.encode()):08x}",
            content=bytes(content),
            file_name=file_name,
            mime_type=mime_type,
            file_path=f"{kind}/file_{n}{suffix}",
        )
        return file_id

    def _document_api(self, f: _StoredFile) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(f.content),
        }
        if f.file_name:
            doc["file_name"] = f.file_name
        if f.mime_type:
            doc["mime_type"] = f.mime_type
        return doc

    def _photo_api(self, f: _StoredFile) -> list[dict[str, Any]]:
        return [
            {
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "width": 800,
                "height": 600,
                "file_size": len(f.content),
            }
        ]

    def _lookup(self, chat: _Chat, message_id: int) -> dict[str, Any] | None:
        if message_id in chat.bot_messages:
            return self.api_message(chat.bot_messages[message_id], with_reply=False)
        return chat.user_messages.get(message_id)

    def api_message(self, rec: dict[str, Any], *, with_reply: bool = True) -> dict[str, Any]:
        """Render a stored bot message as a Bot API ``Message`` object."""
        chat = self.chat(rec["chat_id"])
        msg: dict[str, Any] = {
            "message_id": rec["message_id"],
            "date": rec["date"],
            "chat": chat.api_chat(),
            "from": self.bot_user,
        }
        if rec.get("text") is not None:
            msg["text"] = rec["text"]
        if rec.get("entities"):
            msg["entities"] = rec["entities"]
        if rec.get("caption") is not None:
            msg["caption"] = rec["caption"]
        if rec.get("edit_date"):
            msg["edit_date"] = rec["edit_date"]
        markup = rec.get("reply_markup")
        # Telegram only echoes inline keyboards back in Message objects.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        if "document" in rec:
            msg["document"] = {k: v for k, v in rec["document"].items() if k != "content"}
        if "photo" in rec:
            msg["photo"] = rec["photo"]["sizes"]
        if with_reply and rec.get("reply_to_message_id"):
            target = self._lookup(chat, rec["reply_to_message_id"])
            if target is not None:
                msg["reply_to_message"] = target
        return msg

    # ------------------------------------------------------------ user helpers
    def _queue_user_message(
        self,
        chat_id: int,
        content: dict[str, Any],
        first_name: str | None,
        username: str | None,
        user_id: int | None,
    ) -> int:
        chat = self.chat(chat_id)
        if first_name is not None:
            chat.first_name = first_name
        if username is not None:
            chat.username = username
        if user_id is not None:
            chat.user_id = user_id
        message = {
            "message_id": chat.new_message_id(),
            "date": int(time.time()),
            "chat": chat.api_chat(),
            "from": chat.api_user(),
            **content,
        }
        chat.user_messages[message["message_id"]] = message
        return self._queue({"message": message})

    def user_sends(
        self,
        chat_id: int,
        text: str,
        first_name: str | None = None,
        username: str | None = None,
        *,
        user_id: int | None = None,
    ) -> int:
        """Queue a text message from the user; returns its update_id."""
        content: dict[str, Any] = {"text": text}
        match = _COMMAND_RE.match(text)
        if match:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(match.group())}
            ]
        return self._queue_user_message(chat_id, content, first_name, username, user_id)

    def user_sends_photo(
        self,
        chat_id: int,
        file_id: str = "photo1",
        caption: str | None = None,
        *,
        content: bytes | None = None,
        first_name: str | None = None,
        username: str | None = None,
    ) -> int:
        """Queue a photo message; the photo bytes are downloadable via getFile."""
        if file_id not in self.files or content is not None:
            data = content if content is not None else b"\xff\xd8\xff" + file_id.encode()
            self.add_file(data, mime_type="image/jpeg", file_id=file_id, kind="photos")
        body: dict[str, Any] = {"photo": self._photo_api(self.files[file_id])}
        if caption is not None:
            body["caption"] = caption
        return self._queue_user_message(chat_id, body, first_name, username, None)

    def user_sends_document(
        self,
        chat_id: int,
        content: bytes = b"hello",
        file_name: str = "file.txt",
        mime_type: str | None = "text/plain",
        *,
        file_id: str | None = None,
        caption: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
    ) -> int:
        """Queue a document message; the bytes are downloadable via getFile."""
        fid = self.add_file(content, file_name, mime_type, file_id=file_id)
        body: dict[str, Any] = {"document": self._document_api(self.files[fid])}
        if caption is not None:
            body["caption"] = caption
        return self._queue_user_message(chat_id, body, first_name, username, None)

    def user_edits(self, chat_id: int, message_id: int, text: str, *, later: int = 60) -> int:
        """Queue an ``edited_message``: the user changed the text of a message they sent
        (``later`` seconds after sending it); returns its update_id."""
        chat = self.chat(chat_id)
        original = chat.user_messages.get(int(message_id))
        if original is None:
            raise AssertionError(f"chat {chat_id} has no user message #{message_id}")
        edited = {k: v for k, v in original.items() if k != "entities"}
        edited.update(text=text, edit_date=int(original["date"]) + later)
        match = _COMMAND_RE.match(text)
        if match:
            edited["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(match.group())}
            ]
        chat.user_messages[edited["message_id"]] = edited
        return self._queue({"edited_message": edited})

    def user_sends_location(
        self,
        chat_id: int,
        lat: float,
        lon: float,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> int:
        """Queue a location message."""
        body = {"location": {"latitude": lat, "longitude": lon}}
        return self._queue_user_message(chat_id, body, first_name, username, None)

    def user_presses(self, chat_id: int, message_id: int, callback_data: str) -> int:
        """Queue a callback_query for a bot message; returns its update_id."""
        chat = self.chat(chat_id)
        rec = chat.bot_messages.get(int(message_id))
        if rec is None:
            raise AssertionError(
                f"chat {chat_id} has no bot message #{message_id}; sent:\n{_describe(chat.sent)}"
            )
        query_id = f"{self.bot_id}{self._next_callback_id:06d}"
        self._next_callback_id += 1
        self._callback_queries[query_id] = {"chat_id": chat.id, "data": callback_data}
        return self._queue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": chat.api_user(),
                    "message": self.api_message(rec),
                    "chat_instance": str(chat.id),
                    "data": callback_data,
                }
            }
        )

    def press(
        self, chat_id: int, button_text: str, message: int | dict[str, Any] | None = None
    ) -> int:
        """Press a button by its label on the latest bot message having it.

        Exact label matches win over substring matches. Inline buttons queue a callback_query;
        reply-keyboard buttons make the user send the label as text.
        """
        chat = self.chat(chat_id)
        if message is None:
            candidates = [r for r in reversed(chat.sent) if not r.get("deleted")]
        else:
            mid = message if isinstance(message, int) else int(message["message_id"])
            if mid not in chat.bot_messages:
                raise AssertionError(f"chat {chat_id} has no bot message #{mid}")
            candidates = [chat.bot_messages[mid]]
        for exact in (True, False):
            for rec in candidates:
                for label, btn, inline in _buttons(rec):
                    if not (label == button_text if exact else button_text in label):
                        continue
                    if not inline:
                        return self.user_sends(chat_id, label)
                    if "callback_data" not in btn:
                        raise AssertionError(f"button {label!r} has no callback_data: {btn}")
                    return self.user_presses(chat_id, rec["message_id"], btn["callback_data"])
        raise AssertionError(
            f"no button {button_text!r} in chat {chat_id}; bot messages:\n{_describe(candidates)}"
        )

    # ------------------------------------------------------------------ records
    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        """Bot messages sent to the chat, oldest first (records reflect later edits)."""
        return list(self.chat(chat_id).sent)

    def edits(self, chat_id: int) -> list[dict[str, Any]]:
        """Snapshots of every edit made in the chat, oldest first."""
        return list(self.chat(chat_id).edits)

    def my_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands set via setMyCommands for the scope/language."""
        return list(self.commands.get(self._commands_key(scope, language_code), []))

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    # ------------------------------------------------------------------ waiting
    async def wait_for(
        self,
        chat_id: int,
        count: int | None = None,
        predicate: Callable[[list[dict[str, Any]]], bool] | None = None,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Wait until the chat has ``count`` bot messages and/or ``predicate(sent)`` holds."""
        if count is None and predicate is None:
            count = 1
        chat = self.chat(chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def done() -> bool:
            if count is not None and len(chat.sent) < count:
                return False
            return predicate is None or bool(predicate(list(chat.sent)))

        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timeout after {timeout}s waiting for chat {chat_id} "
                    f"(count={count}, predicate={predicate}); bot messages:\n"
                    f"{_describe(chat.sent)}"
                )
            await _wait(self._activity_waiters, remaining)
        return list(chat.sent)

    async def _respond(
        self,
        chat_id: int,
        trigger: Callable[[], int],
        *,
        include_edits: bool,
        timeout: float,
        idle: float,
    ) -> list[dict[str, Any]]:
        chat = self.chat(chat_id)
        n_sent, n_edits, n_answers = len(chat.sent), len(chat.edits), len(self.callback_answers)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        trigger()

        def responded() -> bool:
            if len(chat.sent) > n_sent:
                return True
            if not include_edits:
                return False
            answered = any(a["chat_id"] == chat.id for a in self.callback_answers[n_answers:])
            return len(chat.edits) > n_edits or answered

        while not responded():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timeout after {timeout}s: bot did not respond in chat {chat_id}; "
                    f"bot messages:\n{_describe(chat.sent)}"
                )
            await _wait(self._activity_waiters, remaining)
        while True:  # now wait until the bot has been quiet in this chat for `idle` seconds
            now = loop.time()
            quiet = now - chat.last_activity
            # A press answered only by its toast so far usually sends or edits next: on a loaded
            # machine that can come later than `idle`, so wait longer before calling it done.
            toast_only = len(chat.sent) == n_sent and len(chat.edits) == n_edits
            wait_for = max(idle, TOAST_ONLY_IDLE) if include_edits and toast_only else idle
            if quiet >= wait_for or now >= deadline:
                break
            await _wait(self._activity_waiters, min(wait_for - quiet, deadline - now))

        result = chat.sent[n_sent:]
        if include_edits:
            seen = {r["message_id"] for r in result}
            for edit in chat.edits[n_edits:]:
                rec = chat.bot_messages.get(edit["message_id"])
                if rec is not None and rec["message_id"] not in seen:
                    seen.add(rec["message_id"])
                    result.append(rec)
        return result

    async def reply_to(
        self, chat_id: int, text: str, timeout: float = 10.0, *, idle: float = IDLE_SECONDS
    ) -> list[dict[str, Any]]:
        """Send ``text`` as the user; return the bot's new messages once it goes idle."""
        return await self._respond(
            chat_id,
            lambda: self.user_sends(chat_id, text),
            include_edits=False,
            timeout=timeout,
            idle=idle,
        )

    async def press_and_wait(
        self,
        chat_id: int,
        button_text: str,
        timeout: float = 10.0,
        *,
        message: int | dict[str, Any] | None = None,
        idle: float = IDLE_SECONDS,
    ) -> list[dict[str, Any]]:
        """Press a button; wait for a send/edit/callback answer, then idle.

        Returns new messages plus (current state of) messages edited meanwhile.
        """
        return await self._respond(
            chat_id,
            lambda: self.press(chat_id, button_text, message),
            include_edits=True,
            timeout=timeout,
            idle=idle,
        )

    # ---------------------------------------------------------- API methods
    async def m_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook_url:
            raise FakeAPIError(409, "Conflict: can't use getUpdates method while webhook is "
                               "active; use deleteWebhook to delete the webhook first")
        offset = p.get("offset")
        if offset is not None:
            offset = int(offset)
            if offset < 0:
                self.updates = self.updates[offset:]
            elif offset > 0:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        timeout = max(float(p.get("timeout") or 0), 0.0)
        # A newer getUpdates terminates older ones (like Telegram), releasing stale polls.
        self._poll_generation += 1
        generation = self._poll_generation
        _wake(self._update_waiters)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.api.closing or generation != self._poll_generation:
                return []
            if self.updates:
                return self.updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await _wait(self._update_waiters, remaining)

    async def m_getMe(self, p: dict[str, Any]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook_url = ""
        self.webhook_secret = ""
        if p.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook_url = str(p.get("url") or "")
        self.webhook_secret = str(p.get("secret_token") or "")
        self.webhook_allowed = p.get("allowed_updates")
        self._deliver_soon()
        return True

    async def m_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }

    def _new_record(self, method: str, p: dict[str, Any]) -> tuple[_Chat, dict[str, Any]]:
        chat = self.chat(_int_param(p, "chat_id"))
        reply_to = p.get("reply_to_message_id")
        if isinstance(p.get("reply_parameters"), dict):
            reply_to = p["reply_parameters"].get("message_id")
        rec: dict[str, Any] = {
            "method": method,
            "chat_id": chat.id,
            "message_id": 0,
            "date": int(time.time()),
            "text": None,
            "caption": None,
            "reply_markup": p.get("reply_markup"),
            "parse_mode": p.get("parse_mode"),
            "reply_to_message_id": int(reply_to) if reply_to else None,
            "edit_date": None,
            "deleted": False,
            "params": p,
        }
        return chat, rec

    def _store(self, chat: _Chat, rec: dict[str, Any]) -> dict[str, Any]:
        rec["message_id"] = chat.new_message_id()
        chat.bot_messages[rec["message_id"]] = rec
        chat.sent.append(rec)
        self._touch(chat)
        return self.api_message(rec)

    @staticmethod
    def _check_caption(p: dict[str, Any]) -> str | None:
        caption = p.get("caption")
        if caption is not None and len(str(caption)) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        return None if caption is None else str(caption)

    async def m_sendMessage(self, p: dict[str, Any]) -> Any:
        text = p.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise _bad_request("message is too long")
        chat, rec = self._new_record("sendMessage", p)
        rec["text"] = text
        if isinstance(p.get("entities"), list):
            rec["entities"] = p["entities"]
        return self._store(chat, rec)

    def _media_file(self, p: dict[str, Any], key: str, kind: str) -> _StoredFile:
        value = p.get(key)
        if isinstance(value, UploadedFile):
            fid = self.add_file(value.content, value.filename, value.content_type, kind=kind)
            return self.files[fid]
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            fid = self.add_file(b"", value.rsplit("/", 1)[-1] or None, None, kind=kind)
            return self.files[fid]
        raise _bad_request("wrong file identifier/HTTP URL specified")

    async def m_sendDocument(self, p: dict[str, Any]) -> Any:
        caption = self._check_caption(p)
        f = self._media_file(p, "document", "documents")
        chat, rec = self._new_record("sendDocument", p)
        rec["caption"] = caption
        rec["document"] = {**self._document_api(f), "content": f.content}
        return self._store(chat, rec)

    async def m_sendPhoto(self, p: dict[str, Any]) -> Any:
        caption = self._check_caption(p)
        f = self._media_file(p, "photo", "photos")
        if isinstance(p.get("photo"), str) and f.file_path.startswith("documents/"):
            raise _bad_request("type of file mismatch")  # a document's file_id, as Telegram
        chat, rec = self._new_record("sendPhoto", p)
        rec["caption"] = caption
        rec["photo"] = {
            "file_id": f.file_id,
            "file_name": f.file_name,
            "mime_type": f.mime_type,
            "content": f.content,
            "sizes": self._photo_api(f),
        }
        return self._store(chat, rec)

    async def m_sendChatAction(self, p: dict[str, Any]) -> Any:
        self.chat_actions.append({"chat_id": _int_param(p, "chat_id"), "action": p.get("action")})
        return True

    def _edit_target(self, p: dict[str, Any]) -> tuple[_Chat, dict[str, Any]]:
        chat = self.chat(_int_param(p, "chat_id"))
        mid = _int_param(p, "message_id")
        rec = chat.bot_messages.get(mid)
        if rec is None or rec["deleted"]:
            if mid in chat.user_messages:
                raise _bad_request("message can't be edited")
            raise _bad_request("message to edit not found")
        return chat, rec

    def _apply_edit(
        self,
        method: str,
        chat: _Chat,
        rec: dict[str, Any],
        changes: dict[str, Any],
        p: dict[str, Any],
    ) -> Any:
        if all(rec.get(k) == v for k, v in changes.items()):
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        rec.update(changes)
        rec["edit_date"] = int(time.time())
        chat.edits.append(
            {
                "method": method,
                "chat_id": chat.id,
                "message_id": rec["message_id"],
                "text": rec.get("text"),
                "caption": rec.get("caption"),
                "reply_markup": rec.get("reply_markup"),
                "params": p,
            }
        )
        self._touch(chat)
        return self.api_message(rec)

    async def m_editMessageText(self, p: dict[str, Any]) -> Any:
        if p.get("inline_message_id"):
            return True
        text = "" if p.get("text") is None else str(p["text"])
        if not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        chat, rec = self._edit_target(p)
        if rec.get("text") is None:
            raise _bad_request("there is no text in the message to edit")
        changes = {"text": text, "reply_markup": p.get("reply_markup")}
        if isinstance(p.get("entities"), list):
            changes["entities"] = p["entities"]
        return self._apply_edit("editMessageText", chat, rec, changes, p)

    async def m_editMessageCaption(self, p: dict[str, Any]) -> Any:
        if p.get("inline_message_id"):
            return True
        caption = self._check_caption(p)
        chat, rec = self._edit_target(p)
        changes = {"caption": caption, "reply_markup": p.get("reply_markup")}
        return self._apply_edit("editMessageCaption", chat, rec, changes, p)

    async def m_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        if p.get("inline_message_id"):
            return True
        chat, rec = self._edit_target(p)
        changes = {"reply_markup": p.get("reply_markup")}
        return self._apply_edit("editMessageReplyMarkup", chat, rec, changes, p)

    async def m_deleteMessage(self, p: dict[str, Any]) -> Any:
        chat = self.chat(_int_param(p, "chat_id"))
        rec = chat.bot_messages.get(_int_param(p, "message_id"))
        if rec is None or rec["deleted"]:
            raise _bad_request("message to delete not found")
        rec["deleted"] = True
        self._touch(chat)
        return True

    async def m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        query_id = str(p.get("callback_query_id") or "")
        query = self._callback_queries.get(query_id)
        if query is None:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "chat_id": query["chat_id"],
                "data": query["data"],
                "text": p.get("text"),
                "show_alert": bool(p.get("show_alert", False)),
                "url": p.get("url"),
                "cache_time": p.get("cache_time"),
            }
        )
        self._touch(self.chat(query["chat_id"]))
        return True

    async def m_setMyCommands(self, p: dict[str, Any]) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("commands must be an array")
        key = self._commands_key(p.get("scope"), p.get("language_code"))
        self.commands[key] = [
            {"command": str(c["command"]), "description": str(c["description"])} for c in commands
        ]
        return True

    async def m_getMyCommands(self, p: dict[str, Any]) -> Any:
        return self.my_commands(p.get("scope"), p.get("language_code") or "")

    async def m_deleteMyCommands(self, p: dict[str, Any]) -> Any:
        self.commands.pop(self._commands_key(p.get("scope"), p.get("language_code")), None)
        return True

    async def m_getFile(self, p: dict[str, Any]) -> Any:
        f = self.files.get(str(p.get("file_id") or ""))
        if f is None:
            raise _bad_request("invalid file_id")
        return {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(f.content),
            "file_path": f.file_path,
        }

    async def m_close(self, p: dict[str, Any]) -> Any:
        return True

    async def m_logOut(self, p: dict[str, Any]) -> Any:
        return True


_METHODS: dict[str, str] = {
    name[2:].lower(): name[2:] for name in vars(FakeBot) if name.startswith("m_")
}


class FakeBotAPI:
    """Fake Telegram Bot API HTTP server (aiohttp) on 127.0.0.1; see module docstring."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, default_token: str = DEFAULT_TOKEN
    ) -> None:
        self.host = host
        self.port = port
        self.default_token = default_token
        self.calls: list[Call] = []
        self.downloads: list[str] = []  # file paths served by the file URL
        self.blocked_chats: set[int] = set()
        self.closing = False
        self._bots: dict[str, FakeBot] = {}
        self._runner: web.AppRunner | None = None
        self._next_faults: list[list[Any]] = []  # [method|None, kind, remaining, retry_after]
        self._ratio_faults: dict[str | None, tuple[float, tuple[str, ...], random.Random, int]] = {}
        # Seconds each call of a method takes before it is carried out (a slow link).
        self.latency: dict[str, float] = {}
        # How long a "timeout" fault holds the answer back (longer than the client waits).
        self.hang_seconds = 30.0
        self.answers_lost = 0  # requests carried out whose answer never reached the client
        # When each call to a chat came in (loop time): what Telegram's flood limit counts.
        self.chat_call_times: list[float] = []
        # Telegram's broadcast limit per bot token, off unless set: a send beyond
        # `flood_limit` free ones in the last second is refused 429 (retry_after 1). A send
        # marked allow_paid_broadcast is not counted there but against `paid_limit` a second,
        # and takes 0.1 Star: `paid_left` is how many the balance pays for (None: endless);
        # at 0 it is refused 400 (the Bot API's wording is undocumented: MTProto's
        # BALANCE_TOO_LOW). `paid_sends`: paid sends carried out.
        self.flood_limit: int | None = None
        self.paid_limit = 1000
        self.paid_left: int | None = None
        self.paid_sends = 0
        self.flood_refused: Counter[str] = Counter()  # 429s by method
        self._sent_in_second: dict[tuple[str, bool], deque[float]] = {}

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Bind and serve; ``port`` becomes the real port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.closing = False

    async def stop(self) -> None:
        """Release pending long polls and shut the server down."""
        self.closing = True
        for bot in self._bots.values():
            bot.wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"http://{self.host}:{self.port}/file/bot"

    def bot(self, token: str | None = None) -> FakeBot:
        """Per-token state (created on first use)."""
        token = token or self.default_token
        if token not in self._bots:
            self._bots[token] = FakeBot(self, token)
        return self._bots[token]

    # ------------------------------------------------------------ fault injection
    def fail_next(
        self, method: str | None, kind: str | int, count: int = 1, *, retry_after: int = 1
    ) -> None:
        """Fail the next ``count`` calls of ``method`` (None: any non-bootstrap method).

        kind: "429" (retry_after), "502" (plain body), "403" (blocked), "400", "500";
        "lost" (carried out, then the connection is dropped without an answer) and "timeout"
        (carried out, the answer held back ``hang_seconds``): the message IS in the chat.
        Note: PTB only raises RetryAfter when retry_after > 0.
        """
        kind = self._check_kind(kind)
        self._next_faults.append([method, kind, count, retry_after])

    def fail_ratio(
        self,
        method: str | None,
        ratio: float,
        kinds: Iterable[str | int] = ("429", "502"),
        seed: int | None = 0,
        *,
        retry_after: int = 1,
    ) -> None:
        """Fail a random ``ratio`` of calls to ``method`` (None: any non-bootstrap method).

        ``ratio <= 0`` removes the rule. Deterministic for a given ``seed``.
        """
        if ratio <= 0:
            self._ratio_faults.pop(method, None)
            return
        checked = tuple(self._check_kind(k) for k in kinds)
        self._ratio_faults[method] = (ratio, checked, random.Random(seed), retry_after)

    def clear_faults(self) -> None:
        """Remove all fault rules (not ``blocked_chats``)."""
        self._next_faults.clear()
        self._ratio_faults.clear()

    @staticmethod
    def _check_kind(kind: str | int) -> str:
        kind = str(kind)
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(_FAULT_KINDS)}")
        return kind

    def _pick_fault(self, method: str) -> tuple[str, int] | None:
        def applies(target: str | None) -> bool:
            return target == method or (target is None and method not in _NOT_FAILED_BY_WILDCARD)

        for fault in self._next_faults:
            if applies(fault[0]):
                fault[2] -= 1
                if fault[2] <= 0:
                    self._next_faults.remove(fault)
                return fault[1], fault[3]
        for target in (method, None):
            rule = self._ratio_faults.get(target)
            if rule and applies(target):
                ratio, kinds, rng, retry_after = rule
                if rng.random() < ratio:
                    return rng.choice(kinds), retry_after
        return None

    @staticmethod
    def _fault_response(kind: str, retry_after: int) -> web.Response:
        if kind == "502":
            return web.Response(status=502, text="502 Bad Gateway", content_type="text/plain")
        errors = {
            "400": FakeAPIError(400, "Bad Request: injected failure"),
            "403": FakeAPIError(403, "Forbidden: bot was blocked by the user"),
            "429": FakeAPIError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            ),
            "500": FakeAPIError(500, "Internal Server Error"),
        }
        return errors[kind].response()

    # ------------------------------------------------------------------ records
    def calls_to(self, method: str, ok: bool | None = None) -> list[Call]:
        """Recorded calls of one method, optionally only (un)successful ones."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    # --------------------------------------------------------------------- HTTP
    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: _decode_form_value(k, v) for k, v in request.query.items()}
        if not request.body_exists:
            return params
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = UploadedFile(
                    value.filename, value.file.read(), value.content_type or None
                )
            else:
                params[key] = _decode_form_value(key, str(value))
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return self._serve_file(path[len("/file/bot") :])
        if not path.startswith("/bot"):
            return web.Response(status=404, text="404 page not found")
        token, _, method_name = path[len("/bot") :].partition("/")
        if not token or not method_name or "/" in method_name:
            return web.Response(status=404, text="404 page not found")
        try:
            params = await self._read_params(request)
        except (ValueError, UnicodeDecodeError):
            return _bad_request("can't parse request body").response()
        method = _METHODS.get(method_name.lower())
        if method is None:
            self.calls.append(Call(method_name, params, False))
            return FakeAPIError(404, "Not Found: method not found").response()

        if params.get("chat_id") is not None:
            self.chat_call_times.append(asyncio.get_running_loop().time())
        delay = self.latency.get(method)
        if delay:
            await asyncio.sleep(delay)
        paid = method in _BROADCASTS and params.get("allow_paid_broadcast") in (True, "true")
        refusal = self._broadcast_limit(token, method, paid)
        if refusal is not None:
            self.calls.append(Call(method, params, False))
            return refusal.response()
        fault = self._pick_fault(method)
        if fault is not None and fault[0] in _ACCEPTED_FAULTS:
            return await self._accepted_then_lost(request, token, method, params, fault[0])
        if fault is not None:
            self.calls.append(Call(method, params, False))
            return self._fault_response(*fault)
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
            if chat_id in self.blocked_chats:
                self.calls.append(Call(method, params, False))
                return FakeAPIError(403, "Forbidden: bot was blocked by the user").response()

        bot = self.bot(token)
        try:
            result = await getattr(bot, f"m_{method}")(params)
        except FakeAPIError as exc:
            self.calls.append(Call(method, params, False))
            return exc.response()
        self.calls.append(Call(method, params, True, time.monotonic()))
        if paid:
            self.paid_sends += 1
            if self.paid_left is not None:
                self.paid_left -= 1
        return _json_response({"ok": True, "result": result})

    def no_stars(self) -> None:
        """The bot's Stars balance is empty: every paid send is refused from now on."""
        self.paid_left = 0

    def _broadcast_limit(self, token: str, method: str, paid: bool) -> FakeAPIError | None:
        """Telegram's limits on sends (see __init__): the refusal, or None: it may go."""
        if method not in _BROADCASTS or (self.flood_limit is None and not paid):
            return None
        if paid and self.paid_left is not None and self.paid_left <= 0:
            return FakeAPIError(400, "Bad Request: BALANCE_TOO_LOW")
        limit = self.paid_limit if paid else self.flood_limit
        window = self._sent_in_second.setdefault((token, paid), deque())
        now = time.monotonic()
        while window and window[0] <= now - 1.0:
            window.popleft()
        if limit is not None and len(window) >= limit:
            self.flood_refused[method] += 1
            return FakeAPIError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        window.append(now)
        return None

    async def _accepted_then_lost(self, request: web.Request, token: str, method: str,
                                  params: dict[str, Any], kind: str) -> web.StreamResponse:
        result = await getattr(self.bot(token), f"m_{method}")(params)
        self.calls.append(Call(method, params, True, time.monotonic()))
        self.answers_lost += 1
        if kind == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return _json_response({"ok": True, "result": result})
        if request.transport is not None:
            request.transport.abort()  # connection reset: the client gets no answer at all
        return web.Response(status=204)

    def _serve_file(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        bot = self._bots.get(token)
        if bot is not None:
            for f in bot.files.values():
                if f.file_path == file_path:
                    self.downloads.append(file_path)
                    return web.Response(
                        body=f.content, content_type=f.mime_type or "application/octet-stream"
                    )
        return web.Response(status=404, text="Not Found")

    # ------------------------------------------- delegates to the default token
    def user_sends(
        self,
        chat_id: int,
        text: str,
        first_name: str | None = None,
        username: str | None = None,
        *,
        user_id: int | None = None,
        token: str | None = None,
    ) -> int:
        """Queue a text message from the user (``/command`` gets a bot_command entity)."""
        return self.bot(token).user_sends(chat_id, text, first_name, username, user_id=user_id)

    def user_sends_photo(
        self,
        chat_id: int,
        file_id: str = "photo1",
        caption: str | None = None,
        *,
        content: bytes | None = None,
        token: str | None = None,
    ) -> int:
        """Queue a photo message (bytes downloadable through getFile)."""
        return self.bot(token).user_sends_photo(chat_id, file_id, caption, content=content)

    def user_sends_document(
        self,
        chat_id: int,
        content: bytes = b"hello",
        file_name: str = "file.txt",
        mime_type: str | None = "text/plain",
        *,
        caption: str | None = None,
        token: str | None = None,
    ) -> int:
        """Queue a document message (bytes downloadable through getFile)."""
        return self.bot(token).user_sends_document(
            chat_id, content, file_name, mime_type, caption=caption
        )

    def user_sends_location(
        self, chat_id: int, lat: float, lon: float, *, token: str | None = None
    ) -> int:
        """Queue a location message."""
        return self.bot(token).user_sends_location(chat_id, lat, lon)

    def user_presses(
        self, chat_id: int, message_id: int, callback_data: str, *, token: str | None = None
    ) -> int:
        """Queue a callback_query on bot message ``message_id``."""
        return self.bot(token).user_presses(chat_id, message_id, callback_data)

    def press(
        self,
        chat_id: int,
        button_text: str,
        message: int | dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> int:
        """Press the button labelled ``button_text`` on the latest bot message having it."""
        return self.bot(token).press(chat_id, button_text, message)

    def add_file(
        self,
        content: bytes,
        file_name: str | None = None,
        mime_type: str | None = None,
        *,
        file_id: str | None = None,
        token: str | None = None,
    ) -> str:
        """Register downloadable bytes; returns the file_id."""
        return self.bot(token).add_file(content, file_name, mime_type, file_id=file_id)

    def sent(self, chat_id: int, *, token: str | None = None) -> list[dict[str, Any]]:
        """Bot messages sent to the chat (keys: method, message_id, text, caption,
        reply_markup, document/photo {file_id, file_name, mime_type, content, ...}, params)."""
        return self.bot(token).sent(chat_id)

    def edits(self, chat_id: int, *, token: str | None = None) -> list[dict[str, Any]]:
        """Edit snapshots in the chat (method, message_id, text, reply_markup, params)."""
        return self.bot(token).edits(chat_id)

    @property
    def callback_answers(self) -> list[dict[str, Any]]:
        """answerCallbackQuery calls of the default bot."""
        return self.bot().callback_answers

    @property
    def chat_actions(self) -> list[dict[str, Any]]:
        """sendChatAction calls of the default bot."""
        return self.bot().chat_actions

    def my_commands(
        self,
        scope: dict[str, Any] | None = None,
        language_code: str = "",
        *,
        token: str | None = None,
    ) -> list[dict[str, Any]]:
        """Commands set via setMyCommands."""
        return self.bot(token).my_commands(scope, language_code)

    async def wait_for(
        self,
        chat_id: int,
        count: int | None = None,
        predicate: Callable[[list[dict[str, Any]]], bool] | None = None,
        timeout: float = 10.0,
        *,
        token: str | None = None,
    ) -> list[dict[str, Any]]:
        """Wait for ``count`` (absolute) bot messages and/or ``predicate(sent)``."""
        return await self.bot(token).wait_for(chat_id, count, predicate, timeout)

    async def reply_to(
        self,
        chat_id: int,
        text: str,
        timeout: float = 10.0,
        *,
        idle: float = IDLE_SECONDS,
        token: str | None = None,
    ) -> list[dict[str, Any]]:
        """Send as user; return the bot's new messages once it has been idle ``idle`` s."""
        return await self.bot(token).reply_to(chat_id, text, timeout, idle=idle)

    async def press_and_wait(
        self,
        chat_id: int,
        button_text: str,
        timeout: float = 10.0,
        *,
        message: int | dict[str, Any] | None = None,
        idle: float = IDLE_SECONDS,
        token: str | None = None,
    ) -> list[dict[str, Any]]:
        """Press a button; return new + edited bot messages once the bot is idle."""
        return await self.bot(token).press_and_wait(
            chat_id, button_text, timeout, message=message, idle=idle
        )


def build_echo_app(
    fake: FakeBotAPI,
    token: str = DEFAULT_TOKEN,
    *,
    rate_limiter: BaseRateLimiter[Any] | None = None,
    requests: tuple[BaseRequest, BaseRequest] | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Bare PTB echo bot against the fake (benchmark baseline); `requests` (the bot's, then
    getUpdates') replace PTB's default HTTP transport."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.text is not None:
            await message.reply_text(message.text)

    builder = (
        ApplicationBuilder().token(token).base_url(fake.base_url).base_file_url(fake.base_file_url)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    if requests is not None:
        builder = builder.request(requests[0]).get_updates_request(requests[1])
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


@contextlib.asynccontextmanager
async def run_polling(
    app: Application[Any, Any, Any, Any, Any, Any], *, timeout: int = 10
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Run ``app`` with long polling for the duration of the block, then stop it."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=timeout)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()
