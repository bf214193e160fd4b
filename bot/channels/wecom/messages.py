"""WeCom callback XML: the outer envelope, the decrypted message, the passive-reply envelope.

Parsed with defusedxml and DTDs forbidden: the envelope arrives unauthenticated, so a
DOCTYPE (billion laughs, external entities) is refused before anything is expanded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Literal

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.channels.wecom.crypto import SignedEnvelope

MediaKind = Literal["voice", "video", "file"]


class MessageParseError(ValueError):
    """Not a WeCom callback we can read (answer 400/403, process nothing)."""


@dataclass(frozen=True)
class CallbackEnvelope:
    """The POSTed outer XML; only `encrypt` is trusted, and only after its signature."""

    to_user: str
    agent_id: str
    encrypt: str


@dataclass(frozen=True)
class Message:
    """Fields every inner message and event has (MsgId only on messages)."""

    from_user: str
    to_user: str
    create_time: int
    agent_id: int | None
    msg_id: str | None

    @property
    def dedupe_key(self) -> str:
        """WeCom redelivers up to 3 times: the same key means the same callback."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return ":".join(["evt", self.from_user, str(self.create_time), *self._event_parts()])

    def _event_parts(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class TextMessage(Message):
    content: str


@dataclass(frozen=True)
class ImageMessage(Message):
    media_id: str
    pic_url: str


@dataclass(frozen=True)
class LocationMessage(Message):
    latitude: float  # Location_X
    longitude: float  # Location_Y
    scale: int | None
    label: str


@dataclass(frozen=True)
class MediaMessage(Message):
    """Voice, video or file: not supported input, answered politely by the core."""

    kind: MediaKind


@dataclass(frozen=True)
class FileMessage(MediaMessage):
    """A file (an XLSX or CSV list) a feature may read: its bytes by media/get."""

    media_id: str
    filename: str  # "" when the callback names none (media/get's Content-Disposition does)


@dataclass(frozen=True)
class EnterAgentEvent(Message):
    def _event_parts(self) -> tuple[str, ...]:
        return ("enter_agent",)


@dataclass(frozen=True)
class ClickEvent(Message):
    event_key: str

    def _event_parts(self) -> tuple[str, ...]:
        return ("click", self.event_key)


@dataclass(frozen=True)
class TemplateCardEvent(Message):
    event_key: str
    task_id: str
    response_code: str
    card_type: str

    def _event_parts(self) -> tuple[str, ...]:
        return ("template_card_event", self.event_key, self.task_id)


@dataclass(frozen=True)
class UnknownMessage(Message):
    msg_type: str
    event: str

    def _event_parts(self) -> tuple[str, ...]:
        return (self.msg_type, self.event)


def _root(body: bytes | str) -> ET.Element:
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, ET.ParseError) as exc:
        raise MessageParseError(f"unreadable XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise MessageParseError("root element is not <xml>")
    return root


def _text(root: ET.Element, tag: str, default: str | None = None) -> str:
    node = root.find(tag)
    if node is None or node.text is None:
        if default is None:
            raise MessageParseError(f"missing <{tag}>")
        return default
    return node.text.strip()


def _int(root: ET.Element, tag: str) -> int | None:
    value = _text(root, tag, "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise MessageParseError(f"<{tag}> is not a number") from None


def _float(root: ET.Element, tag: str) -> float:
    try:
        return float(_text(root, tag))
    except ValueError:
        raise MessageParseError(f"<{tag}> is not a number") from None


def parse_envelope(body: bytes, *, max_bytes: int) -> CallbackEnvelope:
    if len(body) > max_bytes:
        raise MessageParseError(f"body over {max_bytes} bytes")
    root = _root(body)
    return CallbackEnvelope(to_user=_text(root, "ToUserName", ""),
                            agent_id=_text(root, "AgentID", ""),
                            encrypt=_text(root, "Encrypt"))


def parse_message(xml: str) -> Message:
    """The decrypted inner XML as one of the typed messages above."""
    root = _root(xml)
    base: dict[str, Any] = {
        "from_user": _text(root, "FromUserName"),
        "to_user": _text(root, "ToUserName", ""),
        "create_time": _int(root, "CreateTime") or 0,
        "agent_id": _int(root, "AgentID"),
        "msg_id": _text(root, "MsgId", "") or None,
    }
    msg_type = _text(root, "MsgType")
    if msg_type == "text":
        return TextMessage(**base, content=_text(root, "Content", ""))
    if msg_type == "image":
        return ImageMessage(**base, media_id=_text(root, "MediaId"),
                            pic_url=_text(root, "PicUrl", ""))
    if msg_type == "location":
        lat, lon = _float(root, "Location_X"), _float(root, "Location_Y")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also refuses nan and inf
            raise MessageParseError("location out of range")
        return LocationMessage(**base, latitude=lat, longitude=lon,
                               scale=_int(root, "Scale"), label=_text(root, "Label", ""))
    if msg_type == "file" and _text(root, "MediaId", ""):
        return FileMessage(**base, kind="file", media_id=_text(root, "MediaId"),
                           filename=_text(root, "FileName", "") or _text(root, "Title", ""))
    if msg_type in ("voice", "video", "file"):
        return MediaMessage(**base, kind=msg_type)
    if msg_type == "event":
        return _parse_event(root, base)
    return UnknownMessage(**base, msg_type=msg_type, event="")


def _parse_event(root: ET.Element, base: dict[str, Any]) -> Message:
    event = _text(root, "Event", "")
    if event == "enter_agent":
        return EnterAgentEvent(**base)
    if event.lower() == "click":  # WeCom documents "click"; older samples send "CLICK"
        return ClickEvent(**base, event_key=_text(root, "EventKey", ""))
    if event == "template_card_event":
        return TemplateCardEvent(**base,
                                 event_key=_text(root, "EventKey", ""),
                                 task_id=_text(root, "TaskId", ""),
                                 response_code=_text(root, "ResponseCode", ""),
                                 card_type=_text(root, "CardType", ""))
    return UnknownMessage(**base, msg_type="event", event=event)


def reply_envelope_xml(envelope: SignedEnvelope) -> str:
    """The passive reply body, byte for byte the layout of Tencent's samples."""
    # timestamp and nonce are echoed from the request URL: keep them from breaking the XML.
    if not envelope.timestamp.isdigit() or "]]>" in envelope.nonce:
        raise ValueError("timestamp must be digits and nonce must not contain ']]>'")
    return ("<xml>\n"
            f"<Encrypt><![CDATA[{envelope.encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{envelope.msg_signature}]]></MsgSignature>\n"
            f"<TimeStamp>{envelope.timestamp}</TimeStamp>\n"
            f"<Nonce><![CDATA[{envelope.nonce}]]></Nonce>\n"
            "</xml>")
