"""WeCom callback crypto, the equivalent of Tencent's WXBizMsgCrypt.

signature = sha1(sorted([token, timestamp, nonce, ciphertext]) joined);
ciphertext = base64(AES-256-CBC(key, iv=key[:16], PKCS#7 with a 32-byte block of
16 random bytes + 4-byte big-endian length + message + receive id (the CorpID))),
key = base64decode(EncodingAESKey + "=").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_KEY_LENGTH = 43  # characters of EncodingAESKey (base64 of 32 bytes without the "=")
_PAD_BITS = 32 * 8  # WeCom pads to 32 bytes, not to AES's 16
_RANDOM_BYTES = 16
_LENGTH = struct.Struct(">I")
_B64_KEY = re.compile(r"[A-Za-z0-9+/]{43}")


class Reason(StrEnum):
    BAD_SIGNATURE = "bad signature"
    WRONG_RECEIVE_ID = "wrong CorpID"
    BAD_PADDING = "bad padding"
    BAD_BASE64 = "bad base64"
    BAD_LENGTH = "bad length"
    BAD_ENCODING = "message is not UTF-8"


class WeComCryptoError(Exception):
    """A callback that must not be processed (answer 403); `reason` says why."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def parse_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key from the admin console's EncodingAESKey, or ValueError saying
    what is wrong with it (a config error, so before any callback arrives)."""
    key = encoding_aes_key.strip()
    if len(key) != AES_KEY_LENGTH:
        raise ValueError(f"the EncodingAESKey must be {AES_KEY_LENGTH} characters "
                         f"(got {len(key)}); copy it again from the app's 接收消息 settings")
    if not _B64_KEY.fullmatch(key):
        raise ValueError("the EncodingAESKey may only contain A-Z, a-z, 0-9, + and /")
    raw = base64.b64decode(key + "=", validate=True)
    if len(raw) != 32:  # cannot happen for 43 base64 characters; kept as the real invariant
        raise ValueError("the EncodingAESKey does not decode to 32 bytes")
    return raw


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


@dataclass(frozen=True)
class SignedEnvelope:
    """An encrypted, signed passive reply; messages.reply_envelope_xml renders it."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id
        self._key = parse_aes_key(encoding_aes_key)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str,
                        encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt).encode()
        if not hmac.compare_digest(expected, msg_signature.encode("utf-8", "replace")):
            raise WeComCryptoError(Reason.BAD_SIGNATURE)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The plaintext to answer to the URL-verification GET (alone, no newline)."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_msg(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """The inner XML of a POSTed callback; `encrypt` is the envelope's <Encrypt> text."""
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_msg(self, reply: str, nonce: str, timestamp: str,
                    random: bytes | None = None) -> SignedEnvelope:
        encrypt = self.encrypt(reply, random)
        return SignedEnvelope(encrypt, signature(self.token, timestamp, nonce, encrypt),
                              timestamp, nonce)

    def encrypt(self, message: str, random: bytes | None = None) -> str:
        prefix = secrets.token_bytes(_RANDOM_BYTES) if random is None else random
        if len(prefix) != _RANDOM_BYTES:
            raise ValueError(f"random prefix must be {_RANDOM_BYTES} bytes")
        body = message.encode()
        plain = prefix + _LENGTH.pack(len(body)) + body + self.receive_id.encode()
        padder = padding.PKCS7(_PAD_BITS).padder()
        padded = padder.update(plain) + padder.finalize()
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(padded) + enc.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> str:
        """Decrypt and check the receive id. Only call after check_signature: the
        signature covers the ciphertext, so padding errors are never an oracle."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise WeComCryptoError(Reason.BAD_BASE64) from None
        if not raw or len(raw) % 16:
            raise WeComCryptoError(Reason.BAD_LENGTH)
        dec = self._cipher().decryptor()
        padded = dec.update(raw) + dec.finalize()
        unpadder = padding.PKCS7(_PAD_BITS).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise WeComCryptoError(Reason.BAD_PADDING) from None
        head = _RANDOM_BYTES + _LENGTH.size
        if len(plain) < head:
            raise WeComCryptoError(Reason.BAD_LENGTH)
        (length,) = _LENGTH.unpack_from(plain, _RANDOM_BYTES)
        if head + length > len(plain):
            raise WeComCryptoError(Reason.BAD_LENGTH)
        if plain[head + length:] != self.receive_id.encode():
            raise WeComCryptoError(Reason.WRONG_RECEIVE_ID)
        try:
            return plain[head:head + length].decode("utf-8")
        except UnicodeDecodeError:
            raise WeComCryptoError(Reason.BAD_ENCODING) from None
