"""The local terminal chat: the same conversations as Telegram, on the embedded database."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import deque
from itertools import chain
from pathlib import Path
from typing import TextIO

from bot.assistant import Assistant
from bot.channel import ChannelCaps, FileTooLarge, FileUnavailable, ReceivedFile
from bot.events import Attachment, Button, Incoming, Outcome, Reply
from bot.i18n import t
from bot.models import Role, User
from bot.notify import Dispatcher, RetryLater
from bot.private_files import private_dir, write_private
from bot.reminders import ReminderService
from bot.scheduler import ReminderScheduler
from bot.services import Services
from bot.shaping import by_label
from bot.textutil import safe_filename

CHANNEL = "terminal"
# A terminal shows any length and numbers every button itself (see TerminalChat.to_event);
# an edit or a toast is printed as the next lines, as it always has been.
EARLIER_BUTTON_SETS = 20  # how far back a typed button label is looked for
TERMINAL_CAPS = ChannelCaps(max_text=1_000_000, text_unit="char", max_buttons=1_000,
                            max_button_data=1_000, can_edit=True, toasts=True,
                            menus_per_language=False)
DEMO_TEAM = "城东供电所"
DEMO_AREAS = ("3号台区", "5号台区", "7号台区")
# name, role, areas
DEMO_USERS: tuple[tuple[str, Role, tuple[str, ...]], ...] = (
    ("张三", Role.MANAGER, ("3号台区", "5号台区")),
    ("李四", Role.MANAGER, ("7号台区",)),
    ("王班长", Role.LEAD, ()),
)


async def create_demo(services: Services) -> list[User]:
    now = services.clock.now()
    people = services.people
    async with services.db.tx() as tx:
        team_id = await people.ensure_team(tx, DEMO_TEAM, now)
        area_ids = {a: await people.ensure_area(tx, team_id, a, now) for a in DEMO_AREAS}
        for name, role, areas in DEMO_USERS:
            await people.create_user(tx, name, role, team_id, [area_ids[a] for a in areas], now)
    return await people.users()


class TerminalNotifier:
    """Reminders for the signed-in user appear in the terminal; anyone else's wait until
    they sign in (the row stays pending and is tried again)."""

    channel = CHANNEL

    def __init__(self, chat: TerminalChat) -> None:
        self.chat = chat

    async def push(self, external_id: str, reply: Reply) -> None:
        if external_id != str(self.chat.user.id):
            raise RetryLater(300, "not signed in to the terminal")
        self.chat.out.write("\n🔔 ")
        self.chat.show(Outcome(replies=[reply]))
        self.chat.out.write("> ")
        self.chat.out.flush()


class TerminalChat:
    def __init__(self, assistant: Assistant, user: User, out: TextIO) -> None:
        self.assistant = assistant
        assistant.register_channel(CHANNEL, TERMINAL_CAPS, files=self)
        self.user = user
        self.out = out
        self.buttons: list[Button] = []  # the latest buttons on screen, numbered from 1
        # Buttons of earlier messages since the last answer, newest first: a label typed for
        # a card still works when a push (the morning digest) was printed between the card
        # and the typing.
        self.earlier: deque[list[Button]] = deque(maxlen=EARLIER_BUTTON_SETS)
        self._photo_seq = 0

    def _print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, out: Outcome, *, answers: bool = False) -> None:
        """Print `out`. `answers`: it answers what was just typed (not a push): the buttons
        of messages before it are no longer read from a typed label. A form's step is then
        asked by its own buttons alone: 完成 typed at a later step is that step's word, not
        the 完成 of a step the form has left (which only says the button is stale)."""
        if out.toast:
            self._print(f"  ({out.toast})")
        replies: list[Reply] = ([out.edit] if out.edit else []) + out.replies
        if answers and any(reply.buttons for reply in replies):
            self.buttons = []
            self.earlier.clear()
        for reply in replies:
            self._print("🤖 " + reply.text.replace("\n", "\n   "))
            if reply.photos:
                self._print("   " + " ".join(f"[📷 {p}]" for p in reply.photos))
            for att in reply.attachments:
                self._print("   📎 " + str(self.save_attachment(att)))
            if reply.buttons:
                if self.buttons:
                    self.earlier.appendleft(self.buttons)
                self.buttons = [b for row in reply.buttons for b in row]
                n = 0
                for row in reply.buttons:
                    cells = []
                    for b in row:
                        n += 1
                        cells.append(f"[{n}] {b.label}")
                    self._print("   " + "   ".join(cells))
        self._print()

    def save_attachment(self, att: Attachment) -> Path:
        """Files (reports, charts) land next to the database, under exports/."""
        folder = private_dir(self.assistant.services.settings.db_path.parent / "exports")
        path = folder / safe_filename(att.filename)
        write_private(path, att.data)  # personal data: 0600, like the database
        return path

    def to_event(self, line: str) -> Incoming | None:
        """A typed line: a button by number or text, a simulated photo/location, or text."""
        base = {"channel": CHANNEL, "external_id": str(self.user.id),
                "display_name": self.user.name}
        stripped = line.strip()
        if stripped.isdigit() and 1 <= int(stripped) <= len(self.buttons):
            return Incoming(**base, callback=self.buttons[int(stripped) - 1].data)
        if (b := by_label(stripped, chain(self.buttons, *self.earlier))) is not None:
            return Incoming(**base, callback=b.data)
        if stripped.startswith("/photo"):
            self._photo_seq += 1
            note = stripped[len("/photo"):].strip() or f"photo{self._photo_seq}"
            return Incoming(**base, photo=note)
        if stripped.startswith("/file"):  # a local file sent as if from a phone
            given = stripped[len("/file"):].strip().strip('"')
            if not given:
                self._print(t(self.user.locale or "zh_CN", "terminal.file_usage"))
                return None
            path = Path(given).expanduser().resolve()
            return Incoming(**base, document=str(path), filename=path.name)
        if stripped.startswith("/location"):
            m = re.match(r"/location\s+(-?\d+(?:\.\d+)?)\s*[,， ]\s*(-?\d+(?:\.\d+)?)$", stripped)
            if not m:
                self._print(t(self.user.locale or "zh_CN", "terminal.bad_location"))
                return None
            return Incoming(**base, location=(float(m.group(1)), float(m.group(2))))
        return Incoming(**base, text=line.rstrip("\n"))

    async def fetch_file(self, ref: str, max_bytes: int) -> ReceivedFile:
        """`/file PATH`: the local file, its size checked before it is read."""
        path = Path(ref)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise FileTooLarge(size)
            return ReceivedFile(path.read_bytes())
        except OSError as exc:
            raise FileUnavailable(str(exc)) from exc

    async def send(self, line: str) -> None:
        ev = self.to_event(line)
        if ev is not None:
            self.show(await self.assistant.handle(ev), answers=True)


QUIT_WORDS = ("/quit", "/exit", "/q")


class QuitChat(Exception):
    """/quit typed at a question asked before the chat starts (the demo, whom to sign in)."""


async def _ask(prompt: str, inp: TextIO, out: TextIO) -> str | None:
    out.write(prompt + "\n> ")
    out.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, inp.readline)
    if line.strip() in QUIT_WORDS:
        raise QuitChat
    return None if line == "" else line.strip()


async def choose_user(services: Services, name: str | None, demo: bool | None,
                      inp: TextIO, out: TextIO) -> User | None:
    locale = services.settings.locale
    people = services.people
    if await people.team_count() == 0:
        answer = "y" if demo else None if demo is None else "n"
        if answer is None:
            answer = await _ask(t(locale, "terminal.empty_db"), inp, out)
        if answer is not None and answer.lower() in ("", "y", "yes", "是", "好"):
            users = await create_demo(services)
            out.write(t(locale, "terminal.demo_created",
                        users="、".join(f"{u.name}（{u.role.value}）" for u in users)) + "\n")
        else:
            out.write(t(locale, "terminal.no_demo") + "\n")
            return None
    users = await people.users()
    if not users:
        out.write(t(locale, "terminal.no_demo") + "\n")
        return None
    if name is None:
        if len(users) == 1:
            return users[0]
        listing = "\n".join(f"[{i}] {u.name}（{u.team_name}，{u.role.value}）"
                            for i, u in enumerate(users, 1))
        answer = await _ask(t(locale, "terminal.pick_user") + "\n" + listing, inp, out)
        if answer is None:
            return None
        name = answer
        if answer.isdigit() and 1 <= int(answer) <= len(users):
            return users[int(answer) - 1]
    for u in users:
        if u.name == name:
            return u
    out.write(t(locale, "terminal.unknown_user", name=name,
                users="、".join(u.name for u in users)) + "\n")
    return None


def terminal_reminders(services: Services, chat: TerminalChat) -> ReminderService:
    """Reminders from the terminal: the signed-in user's are shown here; a Telegram user's
    wait for `taiqu-bot run` (never failed, nor the user marked unreachable, from here)."""
    return ReminderService(services, Dispatcher(services, [TerminalNotifier(chat)],
                                                others_later=True))


async def run_terminal(services: Services, user_name: str | None = None,
                       demo: bool | None = None, inp: TextIO | None = None,
                       out: TextIO | None = None, reminders: bool = True) -> int:
    inp = inp or sys.stdin
    out = out or sys.stdout
    try:
        user = await choose_user(services, user_name, demo, inp, out)
    except QuitChat:
        out.write("\n" + t(services.settings.locale, "terminal.bye") + "\n")
        return 0
    if user is None:
        return 1
    now = services.clock.now()
    async with services.db.tx() as tx:
        # The terminal is a local tool for whoever holds the database: sign in by name.
        await services.people.link_identity(tx, CHANNEL, str(user.id), user.id, now)
    assistant = Assistant(services)
    chat = TerminalChat(assistant, user, out)
    scheduler = ReminderScheduler(terminal_reminders(services, chat),
                                  services.settings.scan_interval_seconds)
    if reminders:
        scheduler.start()
    try:
        return await _loop(services, chat, user, inp, out)
    finally:
        await scheduler.stop()


async def _loop(services: Services, chat: TerminalChat, user: User, inp: TextIO,
                out: TextIO) -> int:
    locale = user.locale or services.settings.locale
    out.write(t(locale, "terminal.banner", db=services.settings.db_path, name=user.name) + "\n\n")
    draft = await services.conversations.get(user.id)
    # Resume an unfinished form from an earlier session, else greet.
    await chat.send("/start" if draft is None else "/help")
    loop = asyncio.get_running_loop()
    while True:
        out.write("> ")
        out.flush()
        line = await loop.run_in_executor(None, inp.readline)
        if line == "" or line.strip() in QUIT_WORDS:
            current = await services.people.user(user.id)
            draft = await services.conversations.get(user.id)
            key = "terminal.bye_draft" if draft else "terminal.bye"
            out.write("\n" + t((current.locale if current else None) or locale, key) + "\n")
            return 0
        await chat.send(line)
