"""The `web_fetch` tool: public http(s) pages only, as text (builtin-runtime.md §5.2, §6.3)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 60.0
USER_AGENT = "Mozilla/5.0 (compatible; picoclaw-builtin)"

Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """A URL the tool will not fetch; the text is the tool's error."""


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


async def check_url(url: str, resolver: Resolver) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("Error: only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise Refused("Error: URL has no host")
    try:
        addresses = await resolver(host, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise Refused(f"Error: cannot resolve {host}: {exc}") from exc
    if not addresses or not all(_public(address) for address in addresses):
        raise Refused(f"Error: access denied: {host} is a local or private address")


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) >= MAX_BODY_BYTES:
            return bytes(body[:MAX_BODY_BYTES])
    return bytes(body)


async def web_fetch(
    args: dict[str, Any],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> str:
    url = args["url"].strip()
    max_chars = args.get("maxChars", 50_000)
    resolver = resolver or resolve_host
    async with httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=FETCH_TIMEOUT_SECONDS,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await check_url(url, resolver)
            except Refused as exc:
                return str(exc)
            async with client.stream("GET", url) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                body = await _read_capped(response)
                status = response.status_code
                content_type = response.headers.get("content-type", "")
                encoding = response.encoding or "utf-8"
            break
        else:
            return f"Error: stopped after {MAX_REDIRECTS} redirects"
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    if "html" in content_type.lower() or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        text = html_to_text(text)
    if len(text) > max_chars:
        text = text[:max_chars]
    return f"[url: {url} | status: {status} | chars: {len(text)}]\n{text}"
