"""web_fetch: public http(s) only, re-checked after each redirect, HTML made text (§5.2, §6.3)."""

from __future__ import annotations

import httpx
import pytest

from agent_runtime.tools import web

PUBLIC = {"example.test": ["93.184.216.34"], "docs.test": ["2606:4700::1"], "intranet.test": ["10.0.0.7"]}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host in PUBLIC:
        return PUBLIC[host]
    return [host]


def transport(handler):
    return httpx.MockTransport(handler)


async def fetch(args, handler):
    return await web.web_fetch(args, transport=transport(handler), resolver=fake_resolver)


async def test_html_becomes_text():
    def handler(request):
        page = "<html><style>p{}</style><script>x()</script><body><p>Hello &amp;\n  world</p></body>"
        return httpx.Response(200, headers={"content-type": "text/html"}, text=page)

    assert await fetch({"url": "https://example.test/"}, handler) == (
        "[url: https://example.test/ | status: 200 | chars: 13]\nHello & world"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/v1/users",
        "http://localhost/",
        "http://[::1]/",
        "http://169.254.169.254/latest",
        "http://intranet.test/",
        "http://0.0.0.0/",
    ],
)
async def test_local_and_private_hosts_are_refused(url):
    async def localhost_resolver(host, port):
        return ["127.0.0.1"] if host == "localhost" else await fake_resolver(host, port)

    def handler(request):
        raise AssertionError("no request may be sent")

    result = await web.web_fetch({"url": url}, transport=transport(handler), resolver=localhost_resolver)
    assert result.startswith("Error: access denied:")


async def test_schemes_other_than_http_are_refused():
    assert await fetch({"url": "file:///etc/passwd"}, None) == "Error: only http and https URLs are allowed"


async def test_a_redirect_to_a_private_host_is_refused():
    def handler(request):
        return httpx.Response(302, headers={"location": "http://intranet.test/admin"})

    assert (await fetch({"url": "http://example.test/"}, handler)).startswith(
        "Error: access denied: intranet.test"
    )


async def test_redirects_are_followed_at_most_five_times():
    hops = []

    def handler(request):
        hops.append(str(request.url))
        if len(hops) < 3:
            return httpx.Response(301, headers={"location": f"/hop{len(hops)}"})
        return httpx.Response(200, text="plain body")

    assert await fetch({"url": "http://example.test/"}, handler) == (
        "[url: http://example.test/hop2 | status: 200 | chars: 10]\nplain body"
    )

    def loop(request):
        return httpx.Response(302, headers={"location": "/again"})

    assert await fetch({"url": "http://example.test/"}, loop) == "Error: stopped after 5 redirects"


async def test_max_chars_cuts_the_text():
    def handler(request):
        return httpx.Response(200, text="x" * 500)

    assert (await fetch({"url": "http://docs.test/", "maxChars": 100}, handler)).endswith(
        "chars: 100]\n" + "x" * 100
    )
