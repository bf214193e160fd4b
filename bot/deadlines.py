"""Service-commitment deadlines (十项承诺): rule sets as data, and the arithmetic on them.

Rule sets live in data/rulesets/<name>.json (`sgcc-2011`, the default, and `sgcc-newer`);
every rule states its amount and unit, and a rule a version lacks is null with a note.

How a due time is computed — these are the semantics a manager may have to defend, so they
are spelled out here and pinned by tests/test_deadlines.py:

* Time zone. Working hours (`working_hours`: 08:30–17:30) are wall-clock times in the rule
  set's zone (`WorkingHours.timezone`, Asia/Shanghai), whatever zone the input datetime is
  in; a UTC timestamp read from the database therefore gives the same answer as the same
  instant in Beijing time. Results are returned in the input's zone. Naive datetimes are
  rejected.
* Working time is [08:30, 17:30) on a working day of `WorkCalendar` (admin overrides, then
  chinese-calendar, then Mon–Fri): weekends and statutory holidays are not working days,
  调休 make-up Saturdays/Sundays are.
* When the working clock starts. An acceptance inside working time counts from that
  moment. One before opening on a working day counts from that day's 08:30; one after
  17:30 (17:30 itself included), or on a non-working day, counts from 08:30 of the next
  working day.
* "N working days" (`working_days`) = the N-th working day after the day the clock
  started, at the same clock time: accepted Mon 10:00 → 1 WD due Tue 10:00, 7 WD due at
  10:00 on the 7th working day after, skipping weekends and holidays and counting make-up
  days. Accepted Fri 19:00 → counts from Mon 08:30 → 1 WD due Tue 08:30.
* "N working days before" an event mirrors this: an event outside working time is moved
  back to the latest preceding 17:30, then N working days earlier at the same clock time.
* `minutes`, `hours` and `calendar_days` are plain clock arithmetic in UTC: 24 hours is
  24 hours even across 国庆, 7 calendar days is 168 hours, a repair call at 23:50 with a
  90-minute arrival limit is due at 01:20.
* "2 working hours before" (reminders) walks back through working time only: 2 working
  hours before Tue 09:30 is Mon 16:30; before Mon 09:00 it is the previous Fri 16:00.
* `Deadline.provisional` is True when a day the computation walked over lies in a year the
  calendar does not know (no chinese-calendar data and no admin override): the due time
  was computed on the Mon–Fri fallback and may move once the year's holidays are entered.
  Clock-arithmetic rules never depend on the calendar and are never provisional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.config import DATA_DIR
from bot.workcal import WorkCalendar

RULESETS_DIR = DATA_DIR / "rulesets"

Unit = Literal["minutes", "hours", "calendar_days", "working_days"]
Direction = Literal["after", "before"]
ComplaintType = Literal["complaint", "report", "opinion", "service_request", "consultation"]
AreaKind = Literal["city", "rural", "remote"]
COMPLAINT_TYPES: tuple[ComplaintType, ...] = (
    "complaint", "report", "opinion", "service_request", "consultation")

# A calendar whose overrides leave no working day for this long is broken, not sparse.
_MAX_SCAN_DAYS = 2 * 366

_UNIT_LABELS = {
    "zh_CN": {"minutes": "{n}分钟", "hours": "{n}小时", "calendar_days": "{n}天",
              "working_days": "{n}个工作日"},
    "en": {"minutes": "{n} min", "hours": "{n} h", "calendar_days": "{n} days",
           "working_days": "{n} working days"},
}


class RuleSetError(ValueError):
    """A rule set file that is missing or invalid, phrased for the admin who edits it."""


class CalendarGapError(ValueError):
    """The calendar has no working day within two years of a date (bad overrides)."""


# --- rule set models --------------------------------------------------------------------
class _Model(BaseModel):
    # extra="forbid": a typo in a hand-edited file must fail loudly, not drop a rule.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Model):
    amount: float = Field(gt=0)
    unit: Unit
    direction: Direction = "after"  # after the anchor (acceptance...) or before it (outage)
    audience: str | None = None  # e.g. "important_customers"; None = every affected customer
    average: bool = False  # an average target (newer repair figures), not a per-case limit
    note: str | None = None

    @model_validator(mode="after")
    def _whole_working_days(self) -> Rule:
        if self.unit == "working_days" and self.amount != int(self.amount):
            raise ValueError("working_days must be a whole number")
        return self

    @property
    def delta(self) -> timedelta:
        """The clock length of a minutes/hours/calendar_days rule."""
        if self.unit == "minutes":
            return timedelta(minutes=self.amount)
        if self.unit == "hours":
            return timedelta(hours=self.amount)
        if self.unit == "calendar_days":
            return timedelta(days=self.amount)
        raise ValueError("a working_days rule has no fixed clock length")

    def label(self, locale: str = "zh_CN") -> str:
        """e.g. "7个工作日", "24小时" / "7 working days"."""
        n = int(self.amount) if self.amount == int(self.amount) else self.amount
        return _UNIT_LABELS.get(locale, _UNIT_LABELS["zh_CN"])[self.unit].format(n=n)


class _Group(_Model):
    """A set of named rule slots; a null slot must say why in `notes`."""

    notes: dict[str, str] = Field(default_factory=dict)
    _meta_fields: ClassVar[frozenset[str]] = frozenset({"notes", "note", "label"})
    _before: ClassVar[frozenset[str]] = frozenset()  # slots counted back from an event

    @classmethod
    def slots(cls) -> list[str]:
        return [n for n in cls.model_fields if n not in cls._meta_fields]

    @model_validator(mode="before")
    @classmethod
    def _default_direction(cls, data: Any) -> Any:
        # A slot's direction follows from its meaning; the file may omit it.
        if isinstance(data, dict):
            data = dict(data)
            for name in cls._before:
                rule = data.get(name)
                if isinstance(rule, dict) and "direction" not in rule:
                    data[name] = {**rule, "direction": "before"}
        return data

    @model_validator(mode="after")
    def _check_slots(self) -> _Group:
        slots = self.slots()
        unknown = sorted(set(self.notes) - set(slots))
        if unknown:
            raise ValueError(f"notes for unknown rules {unknown} (rules here: {slots})")
        for name in slots:
            value = getattr(self, name)
            if value is None and not self.notes.get(name, "").strip():
                raise ValueError(f"{name} is null: say why in notes.{name}")
            if isinstance(value, Rule):
                want = "before" if name in self._before else "after"
                if value.direction != want:
                    raise ValueError(f"{name} is counted {want} its event, "
                                     f"not {value.direction!r}")
        return self


class ByArea(_Group):
    city: Rule | None
    rural: Rule | None
    remote: Rule | None

    def get(self, area: AreaKind) -> Rule | None:
        rule: Rule | None = getattr(self, area)
        return rule


class ComplaintRules(_Group):
    label: str | None = None  # 投诉, 举报 ...
    note: str | None = None  # e.g. "not covered by this version: complaint figures used"
    contact: Rule | None
    reply: Rule | None


class ArrearsRules(_Group):
    _before = frozenset({"notice_before_cutoff", "renotify_before_cutoff"})
    notice_before_cutoff: Rule | None
    renotify_before_cutoff: Rule | None
    restore_after_payment: Rule | None
    followup_every: Rule | None


class OutageRules(_Group):
    _before = frozenset({"planned_notice", "temporary_notice"})
    planned_notice: Rule | None
    temporary_notice: Rule | None


class RepairRules(_Group):
    arrival: ByArea
    restore_after_arrival: ByArea | None


class MeterRules(_Group):
    calibration_result: Rule | None
    reading_anomaly_reply: Rule | None


CONNECTION_CLASSES = ("residential", "lv", "hv_single", "hv_dual")


class ByCustomerClass(_Group):
    """业扩 figures by the applicant's class: 居民, 低压非居民, 高压单电源, 高压双电源."""

    residential: Rule | None
    lv: Rule | None
    hv_single: Rule | None
    hv_dual: Rule | None

    def get(self, kind: str) -> Rule | None:
        rule: Rule | None = getattr(self, kind)
        return rule


class ConnectionRules(_Group):
    """业扩报装 (commitments 5 and 6). The 2011 set counts the supply-plan reply from the
    application and the connection from the acceptance of the customer's works; the newer
    set replaces both with one end-to-end limit from the application."""

    plan_reply: ByCustomerClass | None
    connect_after_inspection: ByCustomerClass | None
    end_to_end: ByCustomerClass | None


class WorkingHours(_Model):
    start: time
    end: time
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start.tzinfo or self.end.tzinfo:
            raise ValueError("working hours are wall-clock times: give them without an offset")
        if not self.start < self.end:
            raise ValueError("working hours must start before they end")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Reminders(_Model):
    complaint_before_due_working_hours: float = Field(gt=0)
    repair_before_due_minutes: float = Field(gt=0)


class CallbackRules(_Model):
    after_close: Rule  # 回访 within this long after a complaint's reply / a repair's restore


class OrderNoRules(_Model):
    digits: int = Field(gt=0)  # a 95598 order number is this many digits
    note: str | None = None


# Defaults for a hand-edited rule set written before call-backs existed (3 working days,
# 13 digits: neither DOMAIN.md nor the handbook gives figures; the shipped sets say so).
DEFAULT_CALLBACK = CallbackRules(after_close=Rule(amount=3, unit="working_days"))
DEFAULT_ORDER_NO = OrderNoRules(digits=13)


class RuleSet(_Model):
    name: str
    source: str
    description: str
    working_hours: WorkingHours
    reminders: Reminders
    complaints: dict[ComplaintType, ComplaintRules]
    arrears: ArrearsRules
    outage: OutageRules
    repair: RepairRules
    meter: MeterRules
    callback: CallbackRules = DEFAULT_CALLBACK
    # Optional so that a hand-edited set written before 业扩 existed still loads; the
    # feature says plainly that the set lacks it.
    connection: ConnectionRules | None = None
    order_no: OrderNoRules = DEFAULT_ORDER_NO

    @field_validator("complaints")
    @classmethod
    def _every_type(cls, v: dict[ComplaintType, ComplaintRules]
                    ) -> dict[ComplaintType, ComplaintRules]:
        missing = [k for k in COMPLAINT_TYPES if k not in v]
        if missing:
            raise ValueError(f"missing complaint types {missing}")
        return v

    def complaint(self, kind: ComplaintType) -> ComplaintRules:
        return self.complaints[kind]


def available_rulesets(directory: Path = RULESETS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json"))


def load_ruleset_file(path: Path) -> RuleSet:
    """Read and validate one rule set file (uncached)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleSetError(f"cannot read rule set {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RuleSetError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                           f"{exc.msg})") from None
    try:
        ruleset = RuleSet.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors())
        raise RuleSetError(f"{path}: {problems}") from None
    if ruleset.name != path.stem:
        raise RuleSetError(f"{path}: name {ruleset.name!r} does not match the file name")
    return ruleset


@cache
def load_ruleset(name: str, directory: Path = RULESETS_DIR) -> RuleSet:
    """The rule set data/rulesets/<name>.json, validated once per process."""
    names = available_rulesets(directory)
    if name not in names:  # also keeps "../x" out of the path
        raise RuleSetError(f"unknown rule set {name!r} (available: {', '.join(names)})")
    return load_ruleset_file(directory / f"{name}.json")


# --- deadline arithmetic ----------------------------------------------------------------
# "Overdue" is defined once: a deadline is missed from its due minute on. The reminder scan
# sends the "due" reminder at `due_at <= now`, so /todo, the digest and the reports must
# call a deadline overdue at that same minute (use this predicate, or OVERDUE_SQL in SQL).
OVERDUE_SQL = "<="


def is_overdue(due: datetime, now: datetime) -> bool:
    """True from the due minute on (the same moment the "due" reminder goes out)."""
    return due <= now


# The rungs of a deadline ladder (reminder kind `<step>.<rung>`) sent at or after the due
# minute: the owner's, and the lead's escalation.
OVERDUE = ("due", "overdue")
ESCALATE = ("escalate", "overdue_lead")


@dataclass(frozen=True)
class Deadline:
    due: datetime  # aware, in the input's zone
    provisional: bool  # computed on the Mon–Fri fallback for a year the calendar lacks
    rule: Rule
    counted_from: datetime | None = None  # when the clock started (after acceptance rules)


def _local(t: datetime, hours: WorkingHours) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("deadline arithmetic needs timezone-aware datetimes")
    return t.astimezone(hours.zone)


def _opening(d: date, hours: WorkingHours) -> datetime:
    return datetime.combine(d, hours.start, tzinfo=hours.zone)


def _closing(d: date, hours: WorkingHours) -> datetime:
    return datetime.combine(d, hours.end, tzinfo=hours.zone)


def _next_workday(d: date, cal: WorkCalendar) -> date:
    """The first working day strictly after `d`."""
    for _ in range(_MAX_SCAN_DAYS):
        d += timedelta(days=1)
        if cal.is_workday(d):
            return d
    raise CalendarGapError(f"no working day within {_MAX_SCAN_DAYS} days after {d}: "
                           "check the calendar overrides")


def _prev_workday(d: date, cal: WorkCalendar) -> date:
    """The last working day strictly before `d`."""
    for _ in range(_MAX_SCAN_DAYS):
        d -= timedelta(days=1)
        if cal.is_workday(d):
            return d
    raise CalendarGapError(f"no working day within {_MAX_SCAN_DAYS} days before {d}: "
                           "check the calendar overrides")


def _provisional(a: date, b: date, cal: WorkCalendar) -> bool:
    lo, hi = min(a, b), max(a, b)
    return any(not cal.year_known(y) for y in range(lo.year, hi.year + 1))


def is_working_time(t: datetime, cal: WorkCalendar, hours: WorkingHours) -> bool:
    """Whether `t` falls in [opening, closing) of a working day."""
    local = _local(t, hours)
    return cal.is_workday(local.date()) and hours.start <= local.time() < hours.end


def next_working_start(t: datetime, cal: WorkCalendar, hours: WorkingHours) -> datetime:
    """When the working clock runs from `t` on: `t` itself inside working time, otherwise
    the next opening (today's if before opening on a working day). In `t`'s zone."""
    if is_working_time(t, cal, hours):
        return t
    local = _local(t, hours)
    d = local.date()
    if not (cal.is_workday(d) and local.time() < hours.start):
        d = _next_workday(d, cal)
    return _opening(d, hours).astimezone(t.tzinfo)


def _last_working_end(t: datetime, cal: WorkCalendar, hours: WorkingHours) -> datetime:
    """The mirror of next_working_start, local: `t` inside (opening, closing] of a working
    day, otherwise the latest closing before it."""
    local = _local(t, hours)
    d = local.date()
    if cal.is_workday(d):
        if hours.start < local.time() <= hours.end:
            return local
        if local.time() > hours.end:
            return _closing(d, hours)
    return _closing(_prev_workday(d, cal), hours)


def due_after(start: datetime, rule: Rule, cal: WorkCalendar,
              hours: WorkingHours) -> Deadline:
    """Due time of an 'after' rule (complaint contact/reply, restore, arrival, follow-up)."""
    if rule.direction != "after":
        raise ValueError("this rule counts back from an event: use due_before")
    local = _local(start, hours)
    if rule.unit != "working_days":
        due = (start.astimezone(UTC) + rule.delta).astimezone(start.tzinfo)
        return Deadline(due, False, rule, start)
    begin = _local(next_working_start(start, cal, hours), hours)
    d = begin.date()
    for _ in range(int(rule.amount)):
        d = _next_workday(d, cal)
    due_local = datetime.combine(d, begin.time(), tzinfo=hours.zone)
    return Deadline(due_local.astimezone(start.tzinfo),
                    _provisional(local.date(), d, cal), rule, begin.astimezone(start.tzinfo))


def due_before(event: datetime, rule: Rule, cal: WorkCalendar,
               hours: WorkingHours) -> Deadline:
    """Latest time for a 'before' rule (outage notice: start − 7 days; arrears notice)."""
    if rule.direction != "before":
        raise ValueError("this rule counts forward from an event: use due_after")
    local = _local(event, hours)
    if rule.unit != "working_days":
        due = (event.astimezone(UTC) - rule.delta).astimezone(event.tzinfo)
        return Deadline(due, False, rule, event)
    end = _last_working_end(event, cal, hours)
    d = end.date()
    for _ in range(int(rule.amount)):
        d = _prev_workday(d, cal)
    due_local = datetime.combine(d, end.time(), tzinfo=hours.zone)
    return Deadline(due_local.astimezone(event.tzinfo), _provisional(d, local.date(), cal),
                    rule, event)


def working_hours_before(due: datetime, hours_: float, cal: WorkCalendar,
                         hours: WorkingHours) -> datetime:
    """The moment `hours_` working hours before `due`, walking back through working time
    only (nights, weekends and holidays are skipped). In `due`'s zone."""
    if hours_ < 0:
        raise ValueError("hours_ must not be negative")
    if hours_ == 0:
        return due
    remaining = timedelta(hours=hours_)
    cur = _last_working_end(due, cal, hours)
    while True:
        # UTC differences, so a zone with DST would still count real hours.
        available = cur.astimezone(UTC) - _opening(cur.date(), hours).astimezone(UTC)
        if remaining <= available:
            return (cur.astimezone(UTC) - remaining).astimezone(due.tzinfo)
        remaining -= available
        cur = _closing(_prev_workday(cur.date(), cal), hours)


def working_hours_between(a: datetime, b: datetime, cal: WorkCalendar,
                          hours: WorkingHours) -> float:
    """Working hours in [a, b] (0 when b is not after a)."""
    la, lb = _local(a, hours), _local(b, hours)
    total = timedelta()
    d = la.date()
    while d <= lb.date():
        if cal.is_workday(d):
            lo = max(la, _opening(d, hours)).astimezone(UTC)
            hi = min(lb, _closing(d, hours)).astimezone(UTC)
            if hi > lo:
                total += hi - lo
        d += timedelta(days=1)
    return total / timedelta(hours=1)


def halfway(start: datetime, due: datetime, cal: WorkCalendar | None = None,
            hours: WorkingHours | None = None) -> datetime:
    """The midpoint between `start` and `due`, in `start`'s zone: plain clock time, or
    with `cal` and `hours` the midpoint in working time (so it never lands at night)."""
    if (cal is None) != (hours is None):
        raise TypeError("give both cal and hours, or neither")
    if cal is None or hours is None:
        mid = start.astimezone(UTC) + (due.astimezone(UTC) - start.astimezone(UTC)) / 2
        return mid.astimezone(start.tzinfo)
    total = working_hours_between(start, due, cal, hours)
    if total == 0:
        return start
    return working_hours_before(due, total / 2, cal, hours).astimezone(start.tzinfo)
