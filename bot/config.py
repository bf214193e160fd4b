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
    # Set: `run` serves WeCom too (its other TAIQU_WECOM_* settings are the channel's own).
    wecom_corp_id: str | None = None
    db_path: Path = DATA_DIR / "taiqu.db"
    # How long a write waits while another process (e.g. a CLI import) holds the write lock
    # before it fails; a form step waits only db_write_wait_seconds, then its answer is kept
    # in memory and written once the lock is free.
    db_busy_timeout_seconds: float = Field(default=30, gt=0, le=600)
    db_write_wait_seconds: float = Field(default=2, gt=0, le=60)
    # A customer import writes this many rows per transaction and pauses this long between
    # them, so a chat step waiting for the write lock gets it within one batch (issue #12).
    import_batch_rows: int = Field(default=500, ge=1, le=100_000)
    import_pause_ms: int = Field(default=30, ge=0, le=10_000)
    # FULL: a confirmed save survives a power cut; NORMAL is faster but may lose the last ones.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
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
    scan_interval_seconds: float = Field(default=60, gt=0, le=3600)
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
    # Monday's weekly report (local time); the previous Monday-Sunday week.
    weekly_report_time: str = Field(default="08:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # A periodic job (Monday report, morning digest) that fails for one person is logged,
    # recorded in the audit log and tried again on later scans, this many times a period.
    job_attempts: int = Field(default=3, ge=1, le=100)
    quiet_hours: str = Field(default="21:00-07:30",
                             pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    account_no_max_digits: int = Field(default=16, ge=1, le=32)
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

    @field_validator("wecom_corp_id")
    @classmethod
    def _blank_is_unset(cls, v: str | None) -> str | None:
        return v.strip() if v and v.strip() else None

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
