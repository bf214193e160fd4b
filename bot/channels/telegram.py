"""Telegram: PTB updates in, core outcomes out. The only module that imports telegram."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    BaseUpdateProcessor,
    ContextTypes,
    ExtBot,
    TypeHandler,
)

from bot.assistant import Assistant
from bot.channel import ChannelCaps, FileTooLarge, FileUnavailable, ReceivedFile
from bot.channels.telegram_http import AiohttpRequest, maybe_delivered
from bot.channels.telegram_paid import PARAM as PAID_PARAM
from bot.channels.telegram_paid import PaidReplies
from bot.channels.telegram_webhook import (
    ALLOWED_UPDATES,
    TelegramInbox,
    WebhookEndpoint,
    webhook_path,
)
from bot.clock import Clock
from bot.config import SUPPORTED_LOCALES, Settings
from bot.events import GLOBAL_TOKEN, Attachment, Button, Incoming, Outcome, Reply
from bot.handlers.menu import command_descriptions
from bot.notify import OutcomeUnknown, RetryLater, Unreachable
from bot.sendbudget import SendBudget, send_budget
from bot.shaping import split_text
from bot.storage.db import Backend
from bot.storage.dead_updates import DeadUpdates
from bot.storage.send_budgets import SendBudgets

log = logging.getLogger(__name__)
CHANNEL = "telegram"
# What the Bot API takes: 4096 characters of text, 64 bytes of callback_data; an inline
# keyboard of up to 100 buttons; edits, answerCallbackQuery toasts and menus per language.
TELEGRAM_CAPS = ChannelCaps(max_text=4096, text_unit="char", max_buttons=100,
                            max_button_data=64, can_edit=True, toasts=True,
                            menus_per_language=True)
_LANG_CODE = {"zh_CN": "zh", "en": "en"}


class PerUserInOrder(BaseUpdateProcessor):
    """Different users concurrently, one user's updates strictly in arrival order (replies too)."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        import asyncio

        self._asyncio = asyncio
        self._locks: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        if user is None:
            await coroutine
            return
        lock = self._locks.get(user.id)
        if lock is None:
            lock = self._asyncio.Lock()
            self._locks[user.id] = lock
        async with lock:
            await coroutine

    async def initialize(self) -> None:  # nothing to set up
        return None

    async def shutdown(self) -> None:
        return None


# --- updates PTB cannot parse -------------------------------------------------------------
JSONDict = dict[str, Any]
DeadLetter = Callable[[int, JSONDict, Exception], Awaitable[None]]
PARSE_TRIES = 2  # a bad update is read once more on the next poll before it is skipped
# Keys whose string values say what kind of thing arrived, never what anyone wrote.
_STRUCTURAL_KEYS = frozenset({"type", "mime_type"})


def redacted(value: Any, key: str = "") -> Any:
    """An update's shape, to diagnose why it could not be read: keys, ids, dates and types
    stay; every text becomes its length (no message text is stored or logged)."""
    if isinstance(value, dict):
        return {k: redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if isinstance(value, str):
        return value[:32] if key in _STRUCTURAL_KEYS else f"<str:{len(value)}>"
    if isinstance(value, float):
        return "<float>"  # coordinates are personal too
    return value  # ints (update/user/chat/message ids, dates), bools, None


class ScreenedUpdates(AiohttpRequest):
    """The getUpdates connection, and its screen: each update is parsed on its own, once.

    Why: Bot.get_updates parses the whole batch at once (Update.de_list); one update it cannot
    parse (e.g. a poll without Bot API 9.6 fields from an older self-hosted server) makes it log
    the raw batch, message texts included, at CRITICAL and raise, and the Updater neither
    confirms nor skips it: the next poll gets it again, ~445 times a second, and nobody is
    served, across restarts. ScreeningBot.get_updates hands the raw batch here instead. A bad
    update is tried once more on the next poll, then recorded (redacted) and replaced by an
    empty update, which PTB confirms (the offset moves past it) and our handler ignores.
    """

    def __init__(self, dead_letter: DeadLetter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._dead_letter = dead_letter
        self._failures: dict[int, int] = {}  # update id -> failed parses so far
        self.bot: Any = None  # parse as PTB would (its defaults), once the bot exists

    async def updates(self, batch: list[JSONDict]) -> tuple[Update, ...]:
        return tuple(update for _, update in await self._screened(batch))

    async def _screen(self, batch: list[JSONDict]) -> list[JSONDict]:
        """The raw updates to hand on (a skipped one as its bare update id)."""
        return [raw for raw, _ in await self._screened(batch)]

    async def _screened(self, batch: list[JSONDict]) -> list[tuple[JSONDict, Update]]:
        passed: list[tuple[JSONDict, Update]] = []
        for raw in batch:
            update_id = int(raw["update_id"])
            try:
                update = Update.de_json(raw, self.bot)  # PTB never alters its input (_parse_data)
            except Exception as exc:  # any parse failure: PTB raises TypeError, KeyError ...
                tries = self._failures.get(update_id, 0) + 1
                self._failures[update_id] = tries
                if tries < PARSE_TRIES:
                    log.warning("update %s could not be read (%s); trying once more",
                                update_id, type(exc).__name__)
                    return passed  # confirm only those before it: it comes back next poll
                del self._failures[update_id]
                log.error("update %s could not be read (%s); skipped, kept in dead_updates",
                          update_id, type(exc).__name__)
                await self._record(update_id, raw, exc)
                empty = {"update_id": update_id}
                passed.append((empty, Update.de_json(empty, self.bot)))
                continue
            self._failures.pop(update_id, None)
            passed.append((raw, update))
        return passed

    async def _record(self, update_id: int, raw: JSONDict, exc: Exception) -> None:
        try:
            await self._dead_letter(update_id, raw, exc)
        except Exception as db_exc:  # skipping must not depend on the database being well
            log.error("update %s could not be kept in dead_updates (%s)", update_id,
                      type(db_exc).__name__)

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """As PTB's, but a malformed answer is not logged whole: it holds message texts."""
        try:
            return json.loads(payload.decode("utf-8", "replace"))
        except ValueError as exc:
            log.error("getUpdates answer is not JSON (%d bytes)", len(payload))
            raise TelegramError("Invalid server response") from exc


class ScreeningBot(ExtBot[int]):
    """PTB's bot, building one Message a typed step instead of three (~0.1 ms each, cProfile in
    BENCHMARKS.md): getUpdates parses each update once, through ScreenedUpdates (Bot.get_updates
    would parse the batch again, all at once), and send_text does not turn Telegram's answer to
    sendMessage into a Message that nobody reads. Both go through _post like PTB's own methods,
    so the rate limiter, retries and errors are the same. (The public do_api_request warns when
    asked for a method Bot has, so _post it is; pyproject pins PTB 22, which has it.)"""

    __slots__ = ("_screen",)

    def __init__(self, screen: ScreenedUpdates, **kwargs: Any) -> None:
        super().__init__(get_updates_request=screen, **kwargs)
        self._screen = screen
        screen.bot = self

    async def get_updates(self, offset: int | None = None, limit: int | None = None,
                          timeout: Any = None, allowed_updates: Sequence[str] | None = None,
                          *, api_kwargs: JSONDict | None = None,
                          **timeouts: Any) -> tuple[Update, ...]:
        # As Bot.get_updates: the long poll's wait comes on top of the read timeout.
        read = timeouts.pop("read_timeout", self._request[0].read_timeout)
        wait = _seconds(timeout) if timeout else 0
        raw = await self._post(
            "getUpdates", {"timeout": timeout, "offset": offset, "limit": limit,
                           "allowed_updates": allowed_updates},
            read_timeout=(read or 0) + wait, api_kwargs=api_kwargs, **timeouts)
        updates = await self._screen.updates(raw)
        for update in updates:
            self.insert_callback_data(update)
        return updates

    async def send_text(self, chat_id: int, text: str, markup: Keyboard | None = None) -> None:
        """sendMessage as send_message sends it (no defaults are set), answer unread."""
        await self._post("sendMessage", {"chat_id": chat_id, "text": text,
                                         "reply_markup": markup})


class LaneRateLimiter(BaseRateLimiter[int]):
    """The bot token's flood limit (TAIQU_TELEGRAM_SENDS_PER_SECOND) as the core's two-lane
    SendBudget: a reply never waits behind queued pushes. Like PTB's AIORateLimiter, only
    calls to a chat count, and a 429 pauses every send for its retry_after, then the call is
    tried again (at most `max_retries` times). Group limits are left out: the bot answers
    private chats only (to_incoming)."""

    def __init__(self, budget: SendBudget, max_retries: int = 5, *,
                 paid: PaidReplies | None = None) -> None:
        self.budget = budget
        self.max_retries = max_retries
        self.paid = paid  # TAIQU_TELEGRAM_PAID_REPLIES: a late reply may pay instead of wait

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(self, callback: Callable[..., Awaitable[Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        for attempt in range(self.max_retries + 1):
            paid = False
            if data.get("chat_id") is not None:
                paid = await self._pays(endpoint, data)
                if not paid:
                    await self.budget.acquire()
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self.max_retries:
                    raise
                wait = _seconds(exc.retry_after) + 0.1
                log.info("flood limit hit; every %s send waits %.1f s",
                         "paid" if paid else "free", wait)
                (self.paid.budget if paid and self.paid else self.budget).pause(wait)
                continue
            except BadRequest as exc:
                if paid and self.paid and self.paid.refused(exc) and attempt < self.max_retries:
                    continue  # no Stars: sent again from the free budget
                raise
            if paid and self.paid:
                self.paid.sent += 1
            return result
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _pays(self, endpoint: str, data: dict[str, Any]) -> bool:
        """Whether this send goes paid (then marked so); a send tried paid and refused is
        unmarked again."""
        paid = (self.paid is not None and self.paid.wanted(self.budget, endpoint)
                and await self.paid.take())
        if paid:
            data[PAID_PARAM] = True
        else:
            data.pop(PAID_PARAM, None)
        return paid


def _bot_id(settings: Settings) -> str:
    """The token's public part, never its secret: names the bot's budgets in the store."""
    return (settings.telegram_token or "").split(":", 1)[0]


def telegram_budget(settings: Settings, db: Backend) -> SendBudget:
    """No bursts: sends evenly spaced never make more than the rate in any one second. The
    limit is the bot token's: on PostgreSQL every instance takes from one row, named by the
    bot's id."""
    return send_budget(db, f"telegram:{_bot_id(settings)}", settings.telegram_sends_per_second,
                       burst=1, push_min_share=settings.push_min_share,
                       instances=settings.instances)


def paid_replies(settings: Settings, db: Backend, clock: Clock) -> PaidReplies | None:
    """TAIQU_TELEGRAM_PAID_REPLIES: the paid pace and the day's cap, both the bot token's
    (on PostgreSQL shared by every instance, as the free budget is)."""
    if not settings.telegram_paid_replies:
        return None
    name = f"telegram-paid:{_bot_id(settings)}"
    budget = send_budget(db, name, settings.telegram_paid_sends_per_second, burst=1,
                         instances=settings.instances)
    return PaidReplies(budget, SendBudgets(db), name,
                       after=settings.telegram_paid_after_seconds,
                       per_day=settings.telegram_paid_per_day,
                       pause=settings.telegram_paid_pause_minutes * 60,
                       today=lambda: clock.now().astimezone(settings.tz).date().isoformat())


def _markup(buttons: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons])


# An inline keyboard as the Bot API's JSON object, what InlineKeyboardMarkup.to_dict() gives
# (the same keys in the same order: the request's bytes are the same).
Keyboard = dict[str, list[list[dict[str, str]]]]


def _keyboard(buttons: list[list[Button]]) -> Keyboard | None:
    """A message's keyboard for sendMessage, built as plain JSON: PTB's objects (a frozen
    TelegramObject per button, then to_dict() of each) cost ~0.07 ms of CPU for a form step's
    three buttons, about three times this (issue #12, BENCHMARKS.md). PTB sends a dict
    parameter as it sends to_dict()'s: json.dumps of it."""
    if not buttons:
        return None
    return {"inline_keyboard": [[{"callback_data": b.data, "text": b.label} for b in row]
                                for row in buttons]}


def to_incoming(update: Update, edit_window: timedelta | None = None) -> list[Incoming]:
    """One update becomes zero or one core event (a photo carries its caption as text). An
    edit of a message sent at most `edit_window` before becomes an `edited` event; edits of
    older messages are about something long finished: answering them would be noise."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE:
        return []  # customer data never goes to group chats
    base: dict[str, Any] = {"channel": CHANNEL, "external_id": str(user.id),
                            "display_name": user.full_name, "language": user.language_code}
    if update.callback_query is not None:
        return [Incoming(**base, callback=update.callback_query.data or "")]
    edit = update.edited_message
    if edit is not None:
        fresh = (edit_window is not None and edit.edit_date is not None
                 and edit.edit_date - edit.date <= edit_window)
        return [Incoming(**base, edited=True)] if fresh else []
    msg = update.message
    if msg is None:
        return []  # channel posts ...
    if msg.text is not None:
        return [Incoming(**base, text=msg.text)]
    if msg.photo:
        return [Incoming(**base, photo=msg.photo[-1].file_id, text=msg.caption)]
    if msg.document is not None and (msg.document.mime_type or "").startswith("image/"):
        # A photo sent "as a file" (uncompressed, or HEIC from an iPhone) is still a photo.
        return [Incoming(**base, photo=msg.document.file_id, text=msg.caption)]
    if msg.document is not None:  # a file (an XLSX or CSV list): a feature may read it
        return [Incoming(**base, document=msg.document.file_id,
                         filename=msg.document.file_name, text=msg.caption)]
    if msg.location is not None:
        return [Incoming(**base, location=(msg.location.latitude, msg.location.longitude))]
    kind = next((k for k in ("document", "voice", "sticker", "video", "audio", "contact")
                 if getattr(msg, k, None) is not None), "other")
    return [Incoming(**base, other=kind)]


# Updates of different users handled at once. Not fewer: an update waiting for its user's
# earlier one (an album of photos) holds a slot, and 8 made the 50/200-user p50 worse.
CONCURRENT_UPDATES = 32
# Connections to the Bot API: 16 carry the token's 28 sends a second at 0.5 s a round trip; a
# request that finds them all busy waits for one (POOL_WAIT) rather than failing after PTB's 1 s.
CONNECTIONS = 16
POOL_WAIT = 10.0
NETWORK_RETRIES = (0.5, 1.0, 2.0, 4.0)  # seconds between tries on a 5xx / timeout


async def _with_retries(send: Callable[[], Awaitable[Any]], *,
                        repeat_unknown: bool = True) -> Any:
    """A transient network fault (502, timeout) must not swallow a reply: try again with
    back-off. Flood limits (429) are the rate limiter's job; Forbidden is final. With
    repeat_unknown=False a lost answer raises OutcomeUnknown instead of sending again."""
    for delay in NETWORK_RETRIES:
        try:
            return await send()
        except (NetworkError, TimedOut) as exc:
            if isinstance(exc, BadRequest):
                raise
            if not repeat_unknown and maybe_delivered(exc):
                raise OutcomeUnknown(f"answer lost: {exc}") from exc
            log.warning("Bot API fault (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
    return await send()


async def _best_effort(what: str, edit: Callable[[], Awaitable[Any]]) -> None:
    """A call that may fail without costing the reply: retried like a send, then given up
    with a warning."""
    try:
        await _with_retries(edit)
    except TelegramError as exc:
        if "not modified" not in str(exc).lower():
            log.warning("%s failed: %s", what, exc)


class TelegramNotifier:
    """Pushes (reminders, digests) to a user's private chat, mapping Bot API errors to the
    core's delivery outcomes."""

    channel = CHANNEL

    def __init__(self, app: Application) -> None:  # type: ignore[type-arg]
        self.app = app
        self.bot: ScreeningBot = app.bot  # type: ignore[assignment]

    async def push(self, external_id: str, reply: Reply) -> None:
        bot, chat_id = self.bot, int(external_id)
        chunks = _chunks(reply.text)
        try:
            # A 502 or a refused connection is retried here within seconds (as replies are),
            # not left to the next scan a minute later: with 10% bad gateways a 5,000-digest
            # morning took 3 extra scans, 300 s instead of 185 s. A lost answer is not: the
            # message may be on the phone already (OutcomeUnknown, the caller re-sends later).
            for i, chunk in enumerate(chunks):
                markup = _keyboard(reply.buttons) if i == len(chunks) - 1 else None
                await _with_retries(lambda c=chunk, m=markup: bot.send_text(chat_id, c, m),
                                    repeat_unknown=False)
            # Photos a push carries (a result's, a matter sent up) follow its text, as in a
            # reply; another channel's file reference cannot be sent here and is left out.
            for ref in reply.photos:
                channel, _, file_id = ref.partition(":")
                if channel == CHANNEL:
                    await _with_retries(lambda f=file_id: _send_photo_ref(bot, chat_id, f),
                                        repeat_unknown=False)
            for att in reply.attachments:
                await _with_retries(lambda a=att: _send_file(bot, chat_id, a),
                                    repeat_unknown=False)
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc.retry_after), "flood limit") from exc
        except Forbidden as exc:
            raise Unreachable(str(exc)) from exc
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                raise Unreachable(str(exc)) from exc
            raise
        except (NetworkError, TimedOut) as exc:
            if maybe_delivered(exc):
                raise OutcomeUnknown(f"answer lost: {exc}") from exc
            raise RetryLater(10.0, f"network: {exc}") from exc


def _chunks(text: str) -> list[str]:
    """The core already shaped the text for TELEGRAM_CAPS; this only guards a push or reply
    that did not come through it."""
    return split_text(text, TELEGRAM_CAPS.max_text, TELEGRAM_CAPS.text_unit)


async def _send_file(bot: Any, chat_id: int, att: Attachment) -> None:
    file = InputFile(att.data, filename=att.filename)
    if att.kind == "photo":
        await bot.send_photo(chat_id, file)
    else:
        await bot.send_document(chat_id, file)


async def _send_photo_ref(bot: Any, chat_id: int, file_id: str) -> None:
    """A stored photo by its file id. A photo that came as a file (an image document) has a
    document's file id, which sendPhoto refuses: it goes back the way it came."""
    try:
        await bot.send_photo(chat_id, file_id)
    except BadRequest as exc:
        if "chat not found" in str(exc).lower():
            raise
        await bot.send_document(chat_id, file_id)


def _seconds(value: Any) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


class TelegramChannel:
    name = CHANNEL
    caps = TELEGRAM_CAPS

    def __init__(self, assistant: Assistant, settings: Settings, *,
                 rate_limiter: bool = True) -> None:
        if not settings.telegram_token:
            raise ValueError("TAIQU_TELEGRAM_TOKEN is not set")
        self.assistant = assistant
        assistant.register_channel(self.name, self.caps, files=self)
        self.settings = settings
        self.dead_updates = DeadUpdates(assistant.services.db)
        # PTB logs whole updates and API calls (message texts) at DEBUG: never let them out.
        ptb_log = logging.getLogger("telegram")
        ptb_log.setLevel(max(ptb_log.level, logging.INFO))
        services = assistant.services
        limiter = (LaneRateLimiter(telegram_budget(settings, services.db),
                                   paid=paid_replies(settings, services.db, services.clock))
                   if rate_limiter else None)
        self.bot = ScreeningBot(
            ScreenedUpdates(self._dead_letter, connection_pool_size=1),
            token=settings.telegram_token, base_url=settings.telegram_base_url,
            base_file_url=settings.telegram_base_file_url, rate_limiter=limiter,
            request=AiohttpRequest(CONNECTIONS, pool_timeout=POOL_WAIT))
        self.app: Application = (  # type: ignore[type-arg]
            ApplicationBuilder().bot(self.bot)
            .concurrent_updates(PerUserInOrder(CONCURRENT_UPDATES))
            .post_init(self._register_commands).build())
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.notifier = TelegramNotifier(self.app)
        self.webhook: WebhookEndpoint | None = None
        if settings.telegram_webhook_url:
            if not settings.telegram_webhook_secret:
                raise ValueError("TAIQU_TELEGRAM_WEBHOOK_SECRET is not set")
            self.webhook = WebhookEndpoint(
                TelegramInbox(assistant.services.db,
                              lease=timedelta(seconds=settings.inbox_claim_seconds)),
                settings.telegram_webhook_secret,
                webhook_path(settings.telegram_webhook_url), self._webhook_update,
                self._dead_letter, assistant.services.clock.now, CONCURRENT_UPDATES)

    # --- lifecycle -------------------------------------------------------------------
    @property
    def up(self) -> bool:
        if not self.app.running:
            return False
        if self.webhook is not None:  # no polling: up while its endpoint takes updates
            return self.webhook.serving
        return bool(self.app.updater and self.app.updater.running)

    async def start(self) -> None:
        await self.app.initialize()
        if self.app.post_init:
            await self.app.post_init(self.app)
        await self.app.start()
        if self.webhook is not None:  # Telegram POSTs to us (set-webhook told it where)
            await self.webhook.start(self.settings.telegram_webhook_listen)
            return
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            poll_interval=0.0, timeout=10, allowed_updates=ALLOWED_UPDATES)

    async def stop(self) -> None:
        if self.webhook is not None:
            await self.webhook.stop()
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _register_commands(self, app: Application) -> None:  # type: ignore[type-arg]
        """The command menu next to the input box, in each language and a default."""
        # Concurrently: on a slow link five sequential calls would delay the first reply.
        await asyncio.gather(
            *(app.bot.set_my_commands(self._commands(loc), language_code=_LANG_CODE[loc])
              for loc in SUPPORTED_LOCALES),
            app.bot.set_my_commands(self._commands(self.settings.locale)))

    @staticmethod
    def _commands(locale: str) -> list[BotCommand]:
        return [BotCommand(c, d) for c, d in command_descriptions(locale)]

    # --- files users send ----------------------------------------------------------------
    async def fetch_file(self, ref: str, max_bytes: int) -> ReceivedFile:
        """A document's bytes through getFile. The Bot API serves at most 20 MB ("file is
        too big"); getFile tells the size, so a file over `max_bytes` is never downloaded."""
        bot = self.app.bot
        try:
            file = await _with_retries(lambda: bot.get_file(ref))
            if file.file_size is not None and file.file_size > max_bytes:
                raise FileTooLarge(file.file_size)
            data = bytes(await _with_retries(file.download_as_bytearray))
        except BadRequest as exc:
            if "too big" in str(exc).lower():
                raise FileTooLarge(None) from exc
            raise FileUnavailable(str(exc)) from exc
        except TelegramError as exc:
            raise FileUnavailable(str(exc)) from exc
        if len(data) > max_bytes:
            raise FileTooLarge(len(data))
        return ReceivedFile(data)

    # --- updates ---------------------------------------------------------------------
    async def _dead_letter(self, update_id: int, raw: JSONDict, exc: Exception) -> None:
        shape = json.dumps(redacted(raw), ensure_ascii=False)
        limit = self.settings.dead_update_max_bytes
        if len(shape.encode()) > limit:
            shape = shape.encode()[:limit].decode("utf-8", "ignore") + " …(cut)"
        error = f"{type(exc).__name__}: {exc}"[:300]
        await self.dead_updates.record(CHANNEL, update_id,
                                       self.assistant.services.clock.now(), error, shape)

    async def _webhook_update(self, raw: JSONDict) -> None:
        """One recorded webhook update, handled like a polled one (PTB parses it)."""
        update = Update.de_json(raw, self.app.bot)
        if update is not None:
            await self.app.process_update(update)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # An edit answered only while a form could still be open on it (form timeout).
        window = timedelta(minutes=self.settings.form_timeout_minutes)
        for ev in to_incoming(update, window):
            out = await self.assistant.handle(ev)
            await self._deliver(update, out)
            if out.commands_changed:
                await self._chat_commands(update, ev)

    async def _chat_commands(self, update: Update, ev: Incoming) -> None:
        user = await self.assistant.user_for(ev)
        if user is None or update.effective_chat is None:
            return
        locale = user.locale or self.settings.locale
        chat = BotCommandScopeChat(update.effective_chat.id)
        await _best_effort("setting the chat's command menu", lambda: self.app.bot.set_my_commands(
            self._commands(locale), scope=chat))

    async def _deliver(self, update: Update, out: Outcome) -> None:
        chat_id = update.effective_chat.id if update.effective_chat else None
        query = update.callback_query
        pressed = query.message if query is not None else None
        if query is not None:
            try:
                await query.answer(out.toast)
            except TelegramError as exc:  # a late answer is harmless: the query just timed out
                log.debug("answerCallbackQuery failed: %s", exc)
        if query is not None and pressed is not None and out.edit is not None:
            edit = out.edit  # the answer itself (e.g. a ticked box): retried like a send
            await _best_effort("editing the pressed message", lambda: query.edit_message_text(
                edit.text, reply_markup=_markup(edit.buttons)))
        if chat_id is not None:
            for reply in out.replies:
                await self._send(chat_id, reply)
        if (query is not None and pressed is not None and out.edit is None
                and not (query.data or "").startswith(GLOBAL_TOKEN)):
            # A form's buttons are used up once pressed: fewer stale presses later. Cosmetic,
            # so it comes after the real reply: a failed edit must never cost the reply.
            await _best_effort("removing pressed buttons",
                               lambda: query.edit_message_reply_markup(reply_markup=None))

    async def _send(self, chat_id: int, reply: Reply) -> None:
        bot = self.bot
        chunks = _chunks(reply.text)
        try:
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                await _with_retries(lambda c=chunk, lst=last: bot.send_text(
                    chat_id, c, _keyboard(reply.buttons) if lst else None))
            for ref in reply.photos:
                channel, _, file_id = ref.partition(":")
                if channel == CHANNEL:
                    await _with_retries(lambda f=file_id: _send_photo_ref(bot, chat_id, f))
            for att in reply.attachments:
                await _with_retries(lambda a=att: _send_file(bot, chat_id, a))
        except Forbidden:
            log.warning("chat %s blocked the bot; reply dropped", chat_id)
        except TelegramError:
            log.exception("reply to chat %s could not be delivered", chat_id)
