"""WeCom settings (TAIQU_WECOM_*), checked at start so a wrong value stops it with one line."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.channels.wecom.crypto import parse_aes_key
from bot.config import load_model

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"


class WeComSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAIQU_WECOM_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    corp_id: str = Field(min_length=1)  # 企业ID, also the crypto receive id
    agent_id: int = Field(gt=0)  # the self-built app's AgentId
    secret: str = Field(min_length=1, repr=False)
    token: str = Field(min_length=1, repr=False)  # callback Token
    aes_key: str = Field(repr=False)  # callback EncodingAESKey, 43 characters
    listen: str = Field(default="127.0.0.1:8088", pattern=r"^[^\s:]+:\d{1,5}$")
    path: str = Field(default="/wecom/callback", pattern=r"^/\S*$")
    api_base: str = Field(default=DEFAULT_API_BASE, pattern=r"^https?://\S+$")
    api_timeout_seconds: float = Field(default=10, gt=0, le=120)
    # Refetch the access_token this long before WeCom's expires_in runs out, so a send
    # never starts with a token that dies in flight.
    token_refresh_margin_seconds: int = Field(default=300, ge=0, le=3600)
    # The callback envelope is unauthenticated until its signature checks: cap what we read.
    callback_max_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # A signed callback never expires by itself: older than this is refused as a replay.
    # The inbox keeps handled callbacks' keys longer (keep_days), so a redelivery within the
    # window is always recognised.
    callback_max_age_seconds: int = Field(default=86400, ge=60, le=7 * 86400)
    keep_days: int = Field(default=3, ge=2, le=365)
    # WeCom's per-member limits for one app (doc 90236): over them it drops messages
    # silently, so the channel holds the excess instead.
    per_user_per_minute: int = Field(default=30, ge=1, le=30)
    per_user_per_hour: int = Field(default=1000, ge=1, le=1000)
    # Of each member's minute budget, pushes (reminders, digests, reports) leave this many
    # messages to replies, so someone answering a form is never held for a minute (issue #12).
    reply_reserve_per_minute: int = Field(default=10, ge=0, le=29)
    # The app's sends a second, replies first (WeCom allows 10,000 calls of one API a minute
    # per corp, shared by its apps; 45033 "too concurrent" is retried with back-off).
    sends_per_second: float = Field(default=50, gt=0, le=160)
    # People whose callbacks are handled (or messages sent) at the same time. The handling is
    # mostly CPU: more at once only delays the acknowledgements of new callbacks.
    workers: int = Field(default=32, ge=1, le=256)

    @model_validator(mode="after")
    def _keys_outlive_replays(self) -> WeComSettings:
        if self.keep_days * 86400 <= self.callback_max_age_seconds:
            raise ValueError("TAIQU_WECOM_KEEP_DAYS must be longer than "
                             "TAIQU_WECOM_CALLBACK_MAX_AGE_SECONDS, or an old callback could be "
                             "replayed after its key was forgotten")
        return self

    @field_validator("aes_key")
    @classmethod
    def _aes_key(cls, v: str) -> str:
        parse_aes_key(v)  # raises ValueError with the reason
        return v.strip()

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]{1,32}", v.strip()):
            raise ValueError("the callback Token is 1-32 letters or digits (from the admin "
                             "console's 接收消息 settings)")
        return v.strip()


def load_wecom_settings(**overrides: object) -> WeComSettings:
    return load_model(WeComSettings, "TAIQU_WECOM_", **overrides)

