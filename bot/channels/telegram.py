"""Telegram: PTB updates in, core outcomes out. The only module that imports telegram."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
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
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ContextTypes,
    TypeHandler,
)

from bot.assistant import Assistant
from bot.channel import ChannelCaps
from bot.config import SUPPORTED_LOCALES, Settings
from bot.events import GLOBAL_TOKEN, Attachment, Button, Incoming, Outcome, Reply
from bot.handlers.menu import command_descriptions
from bot.notify import RetryLater, Unreachable
from bot.shaping import split_text

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


def _markup(buttons: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons])


def to_incoming(update: Update) -> list[Incoming]:
    """One update becomes zero or one core event (a photo carries its caption as text)."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE:
        return []  # customer data never goes to group chats
    base: dict[str, Any] = {"channel": CHANNEL, "external_id": str(user.id),
                            "display_name": user.full_name, "language": user.language_code}
    if update.callback_query is not None:
        return [Incoming(**base, callback=update.callback_query.data or "")]
    msg = update.message
    if msg is None:
        return []  # edits of old messages, channel posts ...
    if msg.text is not None:
        return [Incoming(**base, text=msg.text)]
    if msg.photo:
        return [Incoming(**base, photo=msg.photo[-1].file_id, text=msg.caption)]
    if msg.location is not None:
        return [Incoming(**base, location=(msg.location.latitude, msg.location.longitude))]
    kind = next((k for k in ("document", "voice", "sticker", "video", "audio", "contact")
                 if getattr(msg, k, None) is not None), "other")
    return [Incoming(**base, other=kind)]


# Updates of different users handled at once. More buys nothing on one core (the work is
# CPU-bound) and each extra in-flight request costs httpcore pool bookkeeping.
CONCURRENT_UPDATES = 32
NETWORK_RETRIES = (0.5, 1.0, 2.0, 4.0)  # seconds between tries on a 5xx / timeout


async def _with_retries(send: Callable[[], Awaitable[Any]]) -> Any:
    """A transient network fault (502, timeout) must not swallow a reply: try again with
    back-off. Flood limits (429) are the rate limiter's job; Forbidden is final."""
    for delay in NETWORK_RETRIES:
        try:
            return await send()
        except (NetworkError, TimedOut) as exc:
            if isinstance(exc, BadRequest):
                raise
            log.warning("Bot API fault (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
    return await send()


class TelegramNotifier:
    """Pushes (reminders, digests) to a user's private chat, mapping Bot API errors to the
    core's delivery outcomes."""

    channel = CHANNEL

    def __init__(self, app: Application) -> None:  # type: ignore[type-arg]
        self.app = app

    async def push(self, external_id: str, reply: Reply) -> None:
        bot, chat_id = self.app.bot, int(external_id)
        chunks = _chunks(reply.text)
        try:
            # A 502 or a timeout is retried here within seconds (as replies are), not left to
            # the next scan a minute later: with 10% bad gateways a 5,000-digest morning took
            # 3 extra scans, 300 s instead of 185 s. Flood limits stay the rate limiter's job.
            for i, chunk in enumerate(chunks):
                markup = _markup(reply.buttons) if i == len(chunks) - 1 else None
                await _with_retries(lambda c=chunk, m=markup: bot.send_message(
                    chat_id, c, reply_markup=m))
            for att in reply.attachments:
                await _with_retries(lambda a=att: _send_file(bot, chat_id, a))
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc.retry_after), "flood limit") from exc
        except Forbidden as exc:
            raise Unreachable(str(exc)) from exc
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                raise Unreachable(str(exc)) from exc
            raise
        except (NetworkError, TimedOut) as exc:
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
        assistant.register_channel(self.name, self.caps)
        self.settings = settings
        builder = (ApplicationBuilder().token(settings.telegram_token)
                   .base_url(settings.telegram_base_url)
                   .base_file_url(settings.telegram_base_file_url)
                   .concurrent_updates(PerUserInOrder(CONCURRENT_UPDATES))
                   .connection_pool_size(CONCURRENT_UPDATES + 8)
                   .post_init(self._register_commands))
        if rate_limiter:
            builder = builder.rate_limiter(AIORateLimiter(max_retries=5))
        self.app: Application = builder.build()  # type: ignore[type-arg]
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.notifier = TelegramNotifier(self.app)

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self.app.initialize()
        if self.app.post_init:
            await self.app.post_init(self.app)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            poll_interval=0.0, timeout=10,
            allowed_updates=["message", "callback_query"])

    async def stop(self) -> None:
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

    # --- updates ---------------------------------------------------------------------
    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        for ev in to_incoming(update):
            out = await self.assistant.handle(ev)
            await self._deliver(update, out)
            if out.commands_changed:
                await self._chat_commands(update, ev)

    async def _chat_commands(self, update: Update, ev: Incoming) -> None:
        user = await self.assistant.user_for(ev)
        if user is None or update.effective_chat is None:
            return
        locale = user.locale or self.settings.locale
        await self.app.bot.set_my_commands(
            self._commands(locale), scope=BotCommandScopeChat(update.effective_chat.id))

    async def _deliver(self, update: Update, out: Outcome) -> None:
        chat_id = update.effective_chat.id if update.effective_chat else None
        query = update.callback_query
        if query is not None:
            try:
                await query.answer(out.toast)
            except TelegramError as exc:  # a late answer is harmless: the query just timed out
                log.debug("answerCallbackQuery failed: %s", exc)
            if query.message is not None:
                try:
                    if out.edit is not None:
                        await query.edit_message_text(out.edit.text,
                                                      reply_markup=_markup(out.edit.buttons))
                    elif not (query.data or "").startswith(GLOBAL_TOKEN):
                        # A form's buttons are used up once pressed: fewer stale presses later.
                        await query.edit_message_reply_markup(reply_markup=None)
                except BadRequest as exc:
                    if "not modified" not in str(exc).lower():
                        log.warning("editing a pressed message failed: %s", exc)
        if chat_id is None:
            return
        for reply in out.replies:
            await self._send(chat_id, reply)

    async def _send(self, chat_id: int, reply: Reply) -> None:
        bot = self.app.bot
        chunks = _chunks(reply.text)
        try:
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                await _with_retries(lambda c=chunk, lst=last: bot.send_message(
                    chat_id, c, reply_markup=_markup(reply.buttons) if lst else None))
            for ref in reply.photos:
                channel, _, file_id = ref.partition(":")
                if channel == CHANNEL:
                    await _with_retries(lambda f=file_id: bot.send_photo(chat_id, f))
            for att in reply.attachments:
                await _with_retries(lambda a=att: _send_file(bot, chat_id, a))
        except Forbidden:
            log.warning("chat %s blocked the bot; reply dropped", chat_id)
        except TelegramError:
            log.exception("reply to chat %s could not be delivered", chat_id)
