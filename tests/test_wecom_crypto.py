"""WeCom callback crypto, pinned by the vectors published with Tencent's own callback
samples (sbzhu/weworkapi_python callback/Sample.py, sbzhu/weworkapi_php callback/Sample.php)
and wechatpy tests/test_crypto.py, then tampered with."""

from __future__ import annotations

import base64
import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wecom.config import load_wecom_settings
from bot.channels.wecom.crypto import (
    Reason,
    WeComCrypto,
    WeComCryptoError,
    parse_aes_key,
    signature,
)
from bot.channels.wecom.messages import reply_envelope_xml
from bot.config import SettingsError
from tests.wecom_reference import ReferenceCrypto

# Tencent Python sample.
PY = WeComCrypto("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
                 "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww1436e0e65a779aee")
# Tencent PHP sample (also the C# and Java samples).
PHP = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
# wechatpy.
WCP = WeComCrypto("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")

PY_DECRYPT = (
    "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914",
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGz"
    "BhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3J"
    "WcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQH"
    "E7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPD"
    "GOCI8jmnKiypE+",
)
PHP_DECRYPT = (
    "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149",
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUp"
    "j911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06"
    "DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH"
    "03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6B"
    "pNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E"
    "7Q==",
)
WCP_ECHO = ("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425",
            "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==")
WCP_DECRYPT = (
    "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294",
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTy"
    "eDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyol"
    "Bug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnY"
    "ZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noT"
    "rb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=",
)
# wechatpy test_encrypt_message: its reply, nonce, timestamp and the expected envelope.
WCP_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WCP_EXPECTED = """<xml>
<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3]]></Encrypt>
<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>
<TimeStamp>1411525903</TimeStamp>
<Nonce><![CDATA[461056294]]></Nonce>
</xml>"""  # the published envelope, verbatim


# --- published vectors ---------------------------------------------------------------------
def test_verify_url_tencent_python_sample() -> None:
    assert PY.verify_url(
        "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683",
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    ) == "1288432023552776189"


def test_verify_url_tencent_php_sample() -> None:
    assert PHP.verify_url(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    ) == "1616140317555161061"


def test_verify_url_wechatpy_and_its_wrong_nonce() -> None:
    assert WCP.verify_url(*WCP_ECHO) == "5927782489442352469"
    sig, ts, _, echo = WCP_ECHO
    with pytest.raises(WeComCryptoError) as err:
        WCP.verify_url(sig, ts, "437374424", echo)
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_decrypt_msg_tencent_python_sample_nihao_from_chenjiashun() -> None:
    assert PY.decrypt_msg(*PY_DECRYPT) == (
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
        "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>")


def test_decrypt_msg_tencent_php_sample_and_wechatpy() -> None:
    assert "<Content><![CDATA[hello]]></Content>" in PHP.decrypt_msg(*PHP_DECRYPT)
    assert "<FromUserName><![CDATA[mycreate]]></FromUserName>" in PHP.decrypt_msg(*PHP_DECRYPT)
    plain = WCP.decrypt_msg(*WCP_DECRYPT)
    assert "<Content><![CDATA[test]]></Content>" in plain
    assert "<FromUserName><![CDATA[messense]]></FromUserName>" in plain


def test_encrypt_direction_wechatpy_vector() -> None:
    env = WCP.encrypt_msg(WCP_REPLY, "461056294", "1411525903", random=b"1234567890123456")
    assert env.msg_signature == "407518b7649e86ef23978113f92d27afa9296533"
    assert reply_envelope_xml(env) == WCP_EXPECTED


def test_signature_is_sha1_of_the_sorted_parts() -> None:
    assert signature("123456", "1411443780", "437374425", WCP_ECHO[3]) == WCP_ECHO[0]


# --- tampering --------------------------------------------------------------------------
def _reason(crypto: WeComCrypto, *args: str) -> Reason:
    with pytest.raises(WeComCryptoError) as err:
        crypto.decrypt_msg(*args)
    return err.value.reason


def test_tampered_signature_timestamp_or_ciphertext_is_refused() -> None:
    sig, ts, nonce, enc = PY_DECRYPT
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert _reason(PY, flipped, ts, nonce, enc) is Reason.BAD_SIGNATURE
    assert _reason(PY, sig.upper(), ts, nonce, enc) is Reason.BAD_SIGNATURE
    assert _reason(PY, sig, str(int(ts) + 1), nonce, enc) is Reason.BAD_SIGNATURE
    assert _reason(PY, sig, ts, nonce, "A" + enc[1:]) is Reason.BAD_SIGNATURE
    assert _reason(PY, "签名", ts, nonce, enc) is Reason.BAD_SIGNATURE


def test_other_token_is_refused() -> None:
    other = WeComCrypto("someoneElse", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
                        "ww1436e0e65a779aee")
    assert _reason(other, *PY_DECRYPT) is Reason.BAD_SIGNATURE


def test_wrong_corp_id_is_refused() -> None:
    other_corp = WeComCrypto("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
                             "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww0000000000000000")
    assert _reason(other_corp, *PY_DECRYPT) is Reason.WRONG_RECEIVE_ID
    # And a validly signed message encrypted for another corp (or a prefix of ours).
    ref = ReferenceCrypto(PY.token, "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "x")
    for corp in ("ww1436e0e65a779aeX", "ww1436e0e65a779ae", ""):
        enc = ref.encrypt("<xml/>", corp_id=corp)
        assert _reason(PY, ref.sign("1", "2", enc), "1", "2", enc) is Reason.WRONG_RECEIVE_ID


def _signed_raw(crypto: WeComCrypto, aes_key: str, plain: bytes) -> tuple[str, str, str, str]:
    """Encrypt raw bytes (no padding added) and sign them, to forge broken plaintexts."""
    key = base64.b64decode(aes_key + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    text = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    return signature(crypto.token, "1", "2", text), "1", "2", text


KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


def test_bad_padding_is_refused() -> None:
    body = b"0123456789abcdef" + (6).to_bytes(4, "big") + b"<xml/>" + PY.receive_id.encode()
    good_pad = 32 - len(body) % 32
    # Control: the forging itself is right.
    assert PY.decrypt_msg(*_signed_raw(PY, KEY, body + bytes([good_pad]) * good_pad)) == "<xml/>"
    cases = [
        body + bytes([good_pad]) * (good_pad - 1) + b"\x00",  # pad byte 0
        body + bytes([good_pad - 1]) * (good_pad - 1) + bytes([good_pad]),  # inconsistent
        (body + b"\x21" * 64)[:64],  # 33 > block size
    ]
    for plain in cases:
        assert _reason(PY, *_signed_raw(PY, KEY, plain)) is Reason.BAD_PADDING, plain


def test_bad_base64_and_bad_length_are_refused() -> None:
    for enc in ("not base64!", "QUJD=" "QUJD"):
        assert _reason(PY, signature(PY.token, "1", "2", enc), "1", "2", enc) \
            is Reason.BAD_BASE64
    short = base64.b64encode(b"x" * 20).decode()  # not a whole AES block
    assert _reason(PY, signature(PY.token, "1", "2", short), "1", "2", short) \
        is Reason.BAD_LENGTH
    # A length field that claims more than there is.
    body = b"0123456789abcdef" + (4000).to_bytes(4, "big") + b"<xml/>ww1436e0e65a779aee"
    pad = 32 - len(body) % 32
    assert _reason(PY, *_signed_raw(PY, KEY, body + bytes([pad]) * pad)) is Reason.BAD_LENGTH


def test_aes_key_validation_says_what_is_wrong() -> None:
    assert len(parse_aes_key(KEY)) == 32
    with pytest.raises(ValueError, match="43 characters"):
        parse_aes_key(KEY[:-1])
    with pytest.raises(ValueError, match="43 characters"):
        WeComCrypto("t", KEY + "=", "ww1")
    with pytest.raises(ValueError, match="may only contain"):
        parse_aes_key(KEY[:-1] + "-")


# --- round trips against the independent reference ------------------------------------------
def test_random_round_trips_both_ways() -> None:
    rng = random.Random(20261130)
    alphabet = "abcXYZ09 <>&\n\"'台区巡视📝\u200b"
    for _ in range(200):
        aes_key = base64.b64encode(rng.randbytes(32)).decode()[:43]
        corp = "ww" + "".join(rng.choice("0123456789abcdef") for _ in range(16))
        token = "".join(rng.choice("abcdefXYZ0123") for _ in range(rng.randint(1, 32)))
        ours, ref = WeComCrypto(token, aes_key, corp), ReferenceCrypto(token, aes_key, corp)
        msg = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        ts, nonce = str(rng.randint(1, 2**31)), str(rng.randint(1, 10**10))
        enc = ref.encrypt(msg, prefix=rng.randbytes(16))
        assert ours.decrypt_msg(ref.sign(ts, nonce, enc), ts, nonce, enc) == msg
        env = ours.encrypt_msg(msg, nonce, ts)
        assert env.msg_signature == ref.sign(ts, nonce, env.encrypt)
        assert ref.decrypt(env.encrypt) == msg
        assert ours.verify_url(env.msg_signature, ts, nonce, env.encrypt) == msg


def test_random_prefix_is_fresh_each_time() -> None:
    a, b = PY.encrypt("<xml/>"), PY.encrypt("<xml/>")
    assert a != b
    with pytest.raises(ValueError):
        PY.encrypt("<xml/>", random=b"short")


def test_wecom_settings_stop_on_a_bad_aes_key_with_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"CORP_ID": "ww1436e0e65a779aee", "AGENT_ID": "1000002",
                        "SECRET": "s3cret", "TOKEN": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
                        "AES_KEY": KEY}.items():
        monkeypatch.setenv(f"TAIQU_WECOM_{name}", value)
    settings = load_wecom_settings()
    assert settings.api_base == "https://qyapi.weixin.qq.com"
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("TAIQU_WECOM_AES_KEY", KEY[:40])
    with pytest.raises(SettingsError) as err:
        load_wecom_settings()
    assert str(err.value) == ("invalid setting TAIQU_WECOM_AES_KEY: the EncodingAESKey must be "
                              "43 characters (got 40); copy it again from the app's 接收消息 "
                              "settings")
