"""The Bot API transport (bot/channels/telegram_http.py) on real loopback sockets: what it
sends, its timeouts, and which faults may have delivered a message (a reminder whose answer
was lost is not sent again at once: it may be on the phone already)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from telegram import InputFile
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.channels.telegram_http import AiohttpRequest, maybe_delivered

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that does whatever `handle` does with each connection."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bot123:SECRET/sendMessage"
    finally:
        server.close()


@contextlib.asynccontextmanager
async def started(**kwargs: Any) -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest(**kwargs)
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


@contextlib.asynccontextmanager
async def posts_to(handle: Callable[[web.Request], Awaitable[web.Response]],
                   ) -> AsyncIterator[str]:
    """An aiohttp server on 127.0.0.1 answering every POST /<method> with `handle`: its URL."""
    app = web.Application()
    app.router.add_post("/{method}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def failure(request: AiohttpRequest, url: str, **timeouts: Any) -> TelegramError:
    with pytest.raises(TelegramError) as caught:
        await request.do_request(url, "POST", RequestData([]), **timeouts)
    return caught.value


async def test_a_refused_connection_was_not_delivered() -> None:
    async with started() as request:
        exc = await failure(request, f"http://127.0.0.1:{free_port()}/bot123:SECRET/getMe")
    assert isinstance(exc, NetworkError) and not isinstance(exc, TimedOut)
    assert not maybe_delivered(exc)


async def test_a_bad_url_was_not_delivered_and_its_token_is_not_told() -> None:
    async with started() as request:
        exc = await failure(request, "http://127.0.0.1:99999/bot123:SECRET/getMe")
    assert isinstance(exc, NetworkError)
    assert not maybe_delivered(exc)
    assert "SECRET" not in str(exc) and "/bot<token>/getMe" in str(exc)


async def test_no_answer_in_time_may_have_delivered() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # reads the request, never answers
        await asyncio.sleep(5)

    async with raw_server(silent) as url, started() as request:
        exc = await failure(request, url, read_timeout=0.2)
    assert isinstance(exc, TimedOut)
    assert maybe_delivered(exc)


async def test_a_connection_closed_after_the_request_may_have_delivered() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()

    async with raw_server(hang_up) as url, started() as request:
        exc = await failure(request, url)
    assert isinstance(exc, NetworkError) and not isinstance(exc, TimedOut)
    assert maybe_delivered(exc)


async def test_waiting_for_a_pooled_connection_too_long_was_not_delivered() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    async with raw_server(slow) as url, started(connection_pool_size=1) as request:
        first = asyncio.create_task(request.do_request(url, "POST", RequestData([])))
        await asyncio.sleep(0.1)  # the one connection is taken
        exc = await failure(request, url, pool_timeout=0.2, connect_timeout=0.1)
        release.set()
        assert await first == (200, b"{}")
    assert isinstance(exc, TimedOut)
    assert not maybe_delivered(exc)
    assert not maybe_delivered(NetworkError("Bad Gateway"))  # an error answer: not done


async def test_fields_are_form_encoded_and_files_go_as_multipart() -> None:
    seen: list[tuple[str, dict[str, Any], str]] = []

    async def record(req: web.Request) -> web.Response:
        form = await req.post()
        parts = {k: (v.filename, v.file.read()) if isinstance(v, web.FileField) else v
                 for k, v in form.items()}
        seen.append((req.content_type, parts, req.headers["User-Agent"]))
        return web.json_response({"ok": True, "result": True})

    async with posts_to(record) as base, started() as request:
        url = f"{base}/x"
        text = RequestData([RequestParameter.from_input("chat_id", 7),
                            RequestParameter.from_input("text", "巡视 3号台区")])
        assert await request.do_request(url, "POST", text) == (
            200, b'{"ok": true, "result": true}')
        csv = InputFile(b"a,b\n1,2\n", filename="工作汇总.csv")
        upload = RequestData([RequestParameter.from_input("chat_id", 7),
                              RequestParameter.from_input("document", csv)])
        assert (await request.do_request(url, "POST", upload))[0] == 200
    (kind1, fields1, agent), (kind2, fields2, _) = seen
    assert kind1 == "application/x-www-form-urlencoded"
    assert fields1 == {"chat_id": "7", "text": "巡视 3号台区"}
    assert agent == AiohttpRequest.USER_AGENT
    assert kind2 == "multipart/form-data"
    assert fields2["chat_id"] == "7"
    assert fields2["document"] == ("工作汇总.csv", b"a,b\n1,2\n")  # as Telegram shows it


async def test_the_proxy_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with PTB's httpx transport: a server that reaches Telegram through HTTPS_PROXY /
    HTTP_PROXY keeps working."""
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async with raw_server(proxy) as url:
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", url.split("/bot")[0])
        async with started() as request:
            answer = await request.do_request("http://api.telegram.invalid/bot1:x/getMe", "POST")
        monkeypatch.setenv("NO_PROXY", "api.telegram.invalid")  # then straight, not through it
        async with started() as request:
            exc = await failure(request, "http://api.telegram.invalid/bot1:x/getMe")
    assert answer == (200, b"{}")
    assert lines == [b"POST http://api.telegram.invalid/bot1:x/getMe HTTP/1.1\r\n"]
    assert not maybe_delivered(exc)  # the name is not found: never sent


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 that no CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


async def test_a_certificate_no_ca_signed_is_refused_before_anything_is_sent(
        tmp_path: Path) -> None:
    got: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=self_signed(tmp_path))
    port = server.sockets[0].getsockname()[1]
    try:
        async with started() as request:
            exc = await failure(request, f"https://127.0.0.1:{port}/bot1:x/getMe")
    finally:
        server.close()
    assert isinstance(exc, NetworkError) and "Certificate" in str(exc)
    assert not maybe_delivered(exc)
    assert got == [] or got == [b""]  # the request itself never went


async def test_a_request_before_initialize_or_after_shutdown_is_refused() -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError):
        await request.do_request("http://127.0.0.1:1/x", "POST")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request("http://127.0.0.1:1/x", "POST")
