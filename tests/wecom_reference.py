"""An independent WeCom callback crypto for tests: the fake WeCom encrypts and signs with
this, the bot decrypts with bot/channels/wecom/crypto.py, so one shared bug cannot hide.

Written differently on purpose: CBC chaining, PKCS#7 (32-byte block) and the length
prefix are done by hand over single AES blocks; nothing is imported from bot/.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16


def _aes_block(key: bytes, block: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # one block at a time, chained below
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(block) + op.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    parts = [token, timestamp, nonce, encrypt]
    parts.sort()
    sha = hashlib.sha1()
    for part in parts:
        sha.update(part.encode("utf-8"))
    return sha.hexdigest()


class ReferenceCrypto:
    def __init__(self, token: str, aes_key: str, corp_id: str) -> None:
        self.token = token
        self.key = base64.b64decode(aes_key + "=")
        assert len(self.key) == 32
        self.corp_id = corp_id

    def encrypt(self, message: str, prefix: bytes | None = None,
                corp_id: str | None = None) -> str:
        body = message.encode("utf-8")
        data = (prefix or os.urandom(16)) + len(body).to_bytes(4, "big") + body
        data += (self.corp_id if corp_id is None else corp_id).encode("utf-8")
        pad = 32 - len(data) % 32
        data += bytes([pad]) * pad
        prev, out = self.key[:16], b""
        for i in range(0, len(data), BLOCK):
            prev = _aes_block(self.key, _xor(data[i:i + BLOCK], prev), encrypt=True)
            out += prev
        return base64.b64encode(out).decode("ascii")

    def decrypt(self, encrypt: str) -> str:
        raw = base64.b64decode(encrypt)
        prev, data = self.key[:16], b""
        for i in range(0, len(raw), BLOCK):
            block = raw[i:i + BLOCK]
            data += _xor(_aes_block(self.key, block, encrypt=False), prev)
            prev = block
        data = data[:-data[-1]]
        length = int.from_bytes(data[16:20], "big")
        assert data[20 + length:].decode("utf-8") == self.corp_id, "wrong corp id"
        return data[20:20 + length].decode("utf-8")

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return sign(self.token, timestamp, nonce, encrypt)
