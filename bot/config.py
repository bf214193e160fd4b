"""Settings from TAIQU_* environment variables and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
LOCALES_DIR = ROOT / "locales"
SUPPORTED_LOCALES = ("zh_CN", "en")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TAIQU_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    telegram_token: str | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    # Telegram by webhook (several instances behind a load balancer, issue #11): Telegram
    # POSTs every update to this public https URL. Unset: long polling (one instance only).
    telegram_webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    # Sent by Telegram with every update and checked on every request (set-webhook gives it
    # to Telegram): 1-256 of A-Z a-z 0-9 _ -, long enough not to be guessed.
    telegram_webhook_secret: str | None = Field(default=None, repr=False,
                                                pattern=r"^[A-Za-z0-9_-]{16,256}$")
    # Where this instance listens for those POSTs (behind the TLS proxy / load balancer).
    telegram_webhook_listen: str = Field(default="127.0.0.1:8089", pattern=r"^[^\s:]+:\d{1,5}$")
    # Set: `run` serves WeCom too (its other TAIQU_WECOM_* settings are the channel's own).
    wecom_corp_id: str | None = None
    db_path: Path = DATA_DIR / "taiqu.db"
    # Set (postgresql://user@host/taiqu): PostgreSQL is the store, shared by every instance,
    # and db_path is not used. Unset: the SQLite file at db_path.
    database_url: str | None = None
    # Connections one instance keeps open to PostgreSQL (reads and single writes run side by side).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # How long a write waits while another process (e.g. a CLI import) holds the write lock
    # before it fails; a form step waits only db_write_wait_seconds, then its answer is kept
    # in memory and written once the lock is free.
    db_busy_timeout_seconds: float = Field(default=30, gt=0, le=600)
    db_write_wait_seconds: float = Field(default=2, gt=0, le=60)
    # A customer import writes this many rows per transaction and pauses this long between
    # them, so a chat step waiting for the write lock gets it within one batch (issue #12).
    import_batch_rows: int = Field(default=500, ge=1, le=100_000)
    import_pause_ms: int = Field(default=30, ge=0, le=10_000)
    # ... and no transaction of any import holds the lock much longer than this: one that did
    # halves the next one's rows (a loaded machine, a table with many indexes); 0: rows fixed.
    import_tx_ms: int = Field(default=100, ge=0, le=60_000)
    # The line-loss import's rows per transaction (at most; fewer past import_tx_ms): a row is
    # seven numbers, a tenth of a customer's, so ten times as many fit (issue #14 §2).
    lineloss_batch_rows: int = Field(default=5000, ge=1, le=100_000)
    # The largest file (an arrears list, a line-loss export) a user may send in chat: a
    # bigger one is refused before it is downloaded where the channel tells the size first.
    upload_max_mb: int = Field(default=20, ge=1, le=200)
    # FULL: a confirmed save survives a power cut; NORMAL is faster but may lose the last ones.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    # A form step's write (the open form, bookkeeping behind replies), committed on the event
    # loop: FULL syncs the WAL before the reply, in a worker thread, one sync shared by the
    # steps committed meanwhile (bot.storage.walsync): as durable as SQLite's FULL. NORMAL
    # skips that sync, a little faster: a power cut may take back an open form's last steps
    # (never a save).
    sqlite_step_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    form_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)  # idle this long: parked
    # A parked form is offered back (继续填写 / 放弃) this long before it is really dropped.
    form_park_hours: int = Field(default=24, ge=1, le=24 * 30)
    # A photo or location sent with no form open is kept this long for the next work log.
    loose_media_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # How long a saved form's buttons still answer "saved as #id" instead of "stale".
    saved_form_memory_hours: int = Field(default=24, ge=1, le=24 * 30)
    # A log saved by mistake: its author may withdraw (delete) it this long after saving;
    # afterwards only the team's lead may delete it.
    log_undo_minutes: int = Field(default=10, ge=0, le=24 * 60)
    # An update that cannot be parsed is stored redacted (no text) for diagnosis, cut to this.
    dead_update_max_bytes: int = Field(default=16384, ge=256, le=1024 * 1024)
    invite_ttl_days: int = Field(default=7, ge=1, le=365)
    # Invite-code guessing: wrong codes one chat may send per window, and wrong codes per
    # minute from everyone together before all code attempts pause for a while.
    invite_max_failures: int = Field(default=5, ge=1, le=1000)
    invite_failure_window_minutes: int = Field(default=10, ge=1, le=24 * 60)
    invite_global_failures_per_minute: int = Field(default=30, ge=1, le=100_000)
    invite_lockout_minutes: int = Field(default=10, ge=1, le=24 * 60)
    max_text_length: int = Field(default=2000, ge=10, le=4000)
    # Choice buttons a form step shows at once; a longer list (a lead's every 台区) is paged.
    form_choice_page: int = Field(default=12, ge=3, le=60)
    account_no_min_digits: int = Field(default=10, ge=1, le=32)
    # Full phone numbers one person may reveal per window; beyond it, refused and lead told.
    reveal_limit: int = Field(default=20, ge=1, le=100_000)
    reveal_window_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # The only snoozes an overdue urgent reminder offers (emergency repair, restore after
    # payment): minutes, short, never to tomorrow; the team's lead is told of each.
    urgent_snooze_minutes: list[int] = Field(default=[30, 60], min_length=1)
    # Sends a second one Telegram bot token makes: a little under the Bot API's flood limit
    # (about 30), so network jitter does not trip it (each 429 stops every send for 1 s or
    # more). Replies to what someone just did go first; pushes (reminders, digests, reports)
    # use what is left, but never less than push_min_share of it while both wait (issue #12).
    telegram_sends_per_second: float = Field(default=28, gt=0, le=1000)
    push_min_share: float = Field(default=0.1, ge=0.01, le=1)
    # Beyond the free flood limit, an operator may pay (issue #12): Telegram sends a message
    # marked allow_paid_broadcast at up to 1000 a second for 0.1 Telegram Stars, taken from
    # the bot's balance. On: a reply (never a push) that would wait in the free budget more
    # than telegram_paid_after_seconds goes paid, at most telegram_paid_per_day a day (local
    # date, all instances together: the cap is what a runaway can cost, per_day / 10 Stars).
    # Telegram refusing a paid send (no Stars) stops paying for telegram_paid_pause_minutes.
    telegram_paid_replies: bool = False
    telegram_paid_after_seconds: float = Field(default=0.5, ge=0, le=60)
    telegram_paid_per_day: int = Field(default=10_000, ge=1, le=10_000_000)
    telegram_paid_sends_per_second: float = Field(default=1000, gt=0, le=1000)
    telegram_paid_pause_minutes: float = Field(default=60, gt=0, le=24 * 60)
    # Instances on one PostgreSQL share those budgets through it (issue #11). If the store
    # stops answering, each sends alone at 1/instances of them until it answers again: set
    # it to how many instances run (more is safe, fewer risks the platform's flood limit).
    instances: int = Field(default=3, ge=1, le=64)
    scan_interval_seconds: float = Field(default=60, gt=0, le=3600)
    # Due reminders a scan takes, and each one in flight, are its instance's this long: an
    # instance that dies leaves them to another after it (far longer than one push takes;
    # also a digest's or Monday report's send to one person). Seconds only in tests.
    reminder_claim_seconds: float = Field(default=300, ge=2, le=3600)
    # One instance at a time runs the scan (digest, Monday report) on a shared store: its
    # hold lasts this long and is renewed every third of it; another takes over after.
    instance_lease_seconds: float = Field(default=45, ge=5, le=600)
    # A person's update (Telegram webhook) or callback / outgoing message (WeCom) is held by
    # the instance handling it this long (far longer than one step or send takes): when that
    # instance dies, another takes over after it (issue #11). Seconds only in tests.
    inbox_claim_seconds: float = Field(default=120, ge=2, le=3600)
    # GET /healthz for a load balancer (store reachable, channels up); unset: not served.
    health_port: int | None = Field(default=None, ge=0, le=65535)
    health_host: str = "0.0.0.0"
    # The store must answer the health check's query within this.
    health_timeout_seconds: float = Field(default=2, gt=0, le=60)
    # Wall clock vs monotonic clock between two scans differing by more: logged as a jump.
    clock_jump_warn_seconds: float = Field(default=60, gt=0)
    # SIGTERM/SIGINT: how long the pushes in flight may take to finish before exit.
    shutdown_drain_seconds: float = Field(default=10, ge=0, le=300)
    # A push whose answer was lost (it may have arrived) is retried after this, not at once.
    unknown_outcome_retry_seconds: float = Field(default=120, ge=0, le=86400)
    # A push for someone who has not opened the bot yet waits for their first visit (which
    # releases it at once); it is looked at again after this many hours in any case.
    not_opened_recheck_hours: float = Field(default=24, gt=0, le=24 * 30)
    digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # The digest is spread over this many minutes from digest_time (0: all at once), by
    # team (a team's people together, teams apart) or by person ("jitter"); each person's
    # moment is the same every day. Spread, a 3,000-person wave leaves room for replies.
    digest_window_minutes: int = Field(default=30, ge=0, le=180)
    digest_spread: Literal["team", "jitter"] = "team"
    # Monday's weekly report (local time); the previous Monday-Sunday week.
    weekly_report_time: str = Field(default="08:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # A periodic job (Monday report, morning digest) that fails for one person is logged,
    # recorded in the audit log and tried again on later scans, this many times a period.
    job_attempts: int = Field(default=3, ge=1, le=100)
    # A scan works on a periodic job (the Monday report) at most this long before the
    # reminders get their turn, with this many pushes waiting in the send budget at once: the
    # budget, not a count, sets the pace (33,000 Monday reports within 30 minutes, issue #12).
    periodic_job_seconds: float = Field(default=50, gt=0, le=3600)
    job_push_workers: int = Field(default=16, ge=1, le=256)
    # A free reminder given a day but no hour ('3天后提醒我回访李四') comes at this time
    # (a part of the day without an hour takes data/day_parts.json's hour instead).
    free_reminder_default_time: str = Field(default="09:00",
                                            pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_hours: str = Field(default="21:00-07:30",
                             pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    account_no_max_digits: int = Field(default=16, ge=1, le=32)
    # A 关联工单号 (95598 or internal work order) as a log takes it: letters, digits, '-'.
    ticket_no_pattern: str = r"^[A-Za-z0-9][A-Za-z0-9-]{5,31}$"
    ruleset: str = "sgcc-2011"  # data/rulesets/<name>.json: which 十项承诺 version applies

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if ":" not in v or " " in v:
            raise ValueError("expected a Bot API token like 123456:ABC-DEF (from @BotFather)")
        return v

    @field_validator("telegram_webhook_url", "telegram_webhook_secret")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v.strip() if v and v.strip() else None

    @field_validator("wecom_corp_id")
    @classmethod
    def _blank_is_unset(cls, v: str | None) -> str | None:
        return v.strip() if v and v.strip() else None

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a PostgreSQL URL like postgresql://user@host/taiqu")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from exc
        return v

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, v: str) -> str:
        if v not in SUPPORTED_LOCALES:
            raise ValueError(
                f"unsupported locale {v!r} (choose one of {', '.join(SUPPORTED_LOCALES)})")
        return v

    @field_validator("ruleset")
    @classmethod
    def _known_ruleset(cls, v: str) -> str:
        available = sorted(p.stem for p in (DATA_DIR / "rulesets").glob("*.json"))
        if v not in available:  # a listing, not a path join, so "../x" cannot match
            raise ValueError(f"no rule set {v!r} in data/rulesets/ "
                             f"(available: {', '.join(available) or 'none'})")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


M = TypeVar("M", bound=BaseSettings)


class SettingsError(Exception):
    """A bad setting, already phrased as one line that names it."""


def load_model(cls: type[M], prefix: str, **overrides: object) -> M:
    """Settings from the environment and .env; a bad value becomes one SettingsError line
    naming the variable (`prefix` + field name)."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = prefix + (str(err["loc"][0]).upper() if err["loc"] else "?")
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {name}: {msg}") from None


def load_settings(**overrides: object) -> Settings:
    return load_model(Settings, "TAIQU_", **overrides)
