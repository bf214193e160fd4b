"""Field declarations: what a form asks, how an answer is read, how a value is shown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.events import Button
from bot.forms.matching import Choice
from bot.services import Ctx


class Kind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"  # one of several, buttons
    MULTI = "multi"  # ticks, like the paper form's □
    TIME = "time"
    PHOTOS = "photos"
    LOCATION = "location"


class Invalid(Exception):
    """A re-prompt: `key` names the locale string explaining what was wrong."""

    def __init__(self, key: str, buttons: list[list[Button]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(key)
        self.key = key
        self.kwargs = kwargs
        self.buttons = buttons or []  # offered above the usual ones (e.g. open the duplicate)


@dataclass(frozen=True)
class FormView:
    """What a parser, a display or a choice list may know of its form: the answers so far,
    the form's meta (e.g. the id of the entry being edited) and its token (for the buttons
    a parser offers). Read-only, so no form passes values around through shared state."""

    values: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    token: str = ""


NO_FORM = FormView()  # a parser called outside a form (e.g. a sentence read before one opens)
EMPTY: tuple[Any, ...] = (None, [], "")  # an unanswered value, whatever the field's kind
PHOTO_NOTES = "photo_notes"  # where the work log keeps its photos' captions (`Field.notes`)

@dataclass(frozen=True)
class Filled:
    """What one answer settles for other fields (a 户号 on file gives its 户名), and a line
    telling the user so. A None value takes back what an earlier answer filled."""

    values: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None


ChoicesFn = Callable[[Ctx], Awaitable[list[Choice]]]
ParseFn = Callable[[str, Ctx, FormView], Awaitable[Any]]
ShowFn = Callable[[Any, Ctx, FormView], Awaitable[str]]
FillFn = Callable[[Any, Ctx, FormView], Awaitable[Filled]]
# Over the answers so far: False skips the step (and drops its value) - e.g. a 整改期限 asked
# only once 需要整改 is answered 是. Plain and synchronous: it runs on every step.
WhenFn = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Field:
    name: str
    label: str  # locale key used in the summary and the edit menu
    prompt: str  # locale key of the question
    kind: Kind
    required: bool = True
    choices: ChoicesFn | None = None
    parse: ParseFn | None = None  # text answer -> stored value (JSON-able); raises Invalid
    show: ShowFn | None = None  # stored value -> text for the summary
    hint: str | None = None  # locale key with examples, shown under the prompt
    quick: tuple[str, ...] = field(default=())  # quick-answer actions offered as buttons
    # A choice with one option (a manager's only 台区) answers itself: asking is a wasted tap.
    fill_sole: bool = False
    # After this answer: fill the fields it settles. The one declared way to default a later
    # field from an earlier answer (户名 from the register once 户号 is known).
    fills: FillFn | None = None
    when: WhenFn | None = None  # asked only while this holds over the answers so far
    # PHOTOS: the value (photo -> caption) where a photo's caption is kept, unless it answers
    # a free-text step (undeclared: PHOTO_NOTES, as before `notes` existed).
    notes: str | None = None

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Whether this step is part of the form, given the answers so far."""
        return self.when is None or self.when(values)

    @property
    def empty(self) -> Any:
        """The value of this field unanswered (a list for the kinds that collect several)."""
        return [] if self.kind in (Kind.MULTI, Kind.PHOTOS) else None
