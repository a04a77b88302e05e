"""README.md and docs/ stay honest: the two commands first, no link out of the repository, every route listed.

A clone has nothing but its own files, so a link must resolve inside it; and the API reference is only
worth reading while it names exactly the routes csgclaw_site/urls.py serves.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import Resolver404, URLResolver, get_resolver, resolve

from bots.bridge import dispatch as bot_dispatch
from bots.participants import llm as participant_llm
from bots.participants import views as participant_views
from core import http

REPO = Path(settings.BASE_DIR).resolve()
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
API_DOC = REPO / "docs" / "api.md"
# Examples of this machine's own server; anything else would send a reader out of the repository.
ALLOWED_LINK_HOSTS = frozenset({"127.0.0.1", "localhost"})

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")
# Trailing punctuation ends the sentence, not the URL (as markdown hosts read it).
BARE_URL = re.compile(r"\bhttps?://[^\s)<>\]]*[^\s)<>\].,;:!?'\"]")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
ROUTE_TABLE_HEADER = re.compile(r"^\|\s*Method\s*\|\s*Path\s*\|")
PLACEHOLDER = re.compile(r"\{[^}/]+\}")

pytestmark = pytest.mark.timeout(30)


def _prose(text: str) -> str:
    """The text a reader can click in: fenced blocks and code spans are examples, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _links(text: str) -> list[str]:
    prose = _prose(text)
    targets = INLINE_LINK.findall(prose) + REFERENCE_DEFINITION.findall(prose) + AUTOLINK.findall(prose)
    # A bare URL is a link on every markdown host; drop those already counted as a link's target.
    bare = BARE_URL.findall(INLINE_LINK.sub("", AUTOLINK.sub("", prose)))
    return targets + bare


def _anchor(heading: str) -> str:
    """The id a markdown host gives a heading: lower case, punctuation dropped, spaces become hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(heading) for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8")))}


def _link_problem(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, leaves the repository or points nowhere; None when it is fine."""
    parts = urlsplit(target)
    if parts.scheme or target.startswith("//"):
        if parts.scheme in ("http", "https") and parts.hostname in ALLOWED_LINK_HOSTS:
            return None
        return "points outside the repository"
    if target.startswith("/"):
        return "is an absolute path; link relative to the file"
    destination = (source.parent / parts.path).resolve() if parts.path else source
    if not destination.is_relative_to(REPO):
        return "leaves the repository"
    if not destination.exists():
        return "names a file that does not exist"
    if parts.fragment and destination.suffix == ".md" and parts.fragment not in _anchors(destination):
        return f'names a heading "#{parts.fragment}" that {destination.name} does not have'
    return None


def _documented_routes() -> list[tuple[list[str], str]]:
    """(methods, path) of every row of every `| Method | Path | …` table in docs/api.md."""
    routes: list[tuple[list[str], str]] = []
    in_table = False
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        if ROUTE_TABLE_HEADER.match(line):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not in_table or set(cells[0]) <= {"-", ":", " "}:
            continue
        methods = [method.strip().upper() for method in cells[0].split(",")]
        routes.extend((methods, path) for path in re.findall(r"`([^`]+)`", cells[1]))
    return routes


def _sample_path(path: str) -> str:
    """A concrete request path for a documented one: `{id}` placeholders filled, the query string dropped."""
    return PLACEHOLDER.sub("sample-id", path.split("?", 1)[0])


def _route_problem(methods: list[str], path: str) -> str | None:
    """Why the server would not serve `methods` on `path`; None when it does."""
    try:
        match = resolve(_sample_path(path))
    except Resolver404:
        return "matches no route"
    if match.func is http.not_found:
        return "falls through to the 404 route"
    if match.func is bot_dispatch.bot_api:
        parsed = bot_dispatch.parse_bot_path(_sample_path(path))
        return None if parsed and parsed[1] in bot_dispatch.ACTIONS else "is not a bot action"
    if match.func is participant_llm.agent_llm:
        handlers = participant_llm.ROUTES.get(match.kwargs.get("rest") or "")
        if handlers is None:
            return "is not an agent LLM action"
        missing = [method for method in methods if method not in handlers]
        return f"does not serve {', '.join(missing)}" if missing else None
    if match.func is participant_views.participant_events:
        return None if match.kwargs["channel"] in ("csgclaw", "feishu") else "names a channel it refuses"
    if match.func is participant_views.participant_messages:
        return None if match.kwargs["channel"] == "csgclaw" else "names a channel it refuses"
    view_class = getattr(match.func, "view_class", None)
    if view_class is not None:
        served = [method for method in methods if method == "ANY" or hasattr(view_class, method.lower())]
        missing = [method for method in methods if method not in served]
        return f"does not serve {', '.join(missing)}" if missing else None
    return None


def test_readme_starts_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    body = [line for line in lines[1:] if line.strip()]
    assert body[0] in ("```sh", "```shell", "```bash", "```")
    end = body.index("```", 1)
    commands = [line.split("#", 1)[0].strip() for line in body[1:end]]
    assert commands == ["make run", "make test"]


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: str(path.relative_to(REPO)))
def test_links_stay_inside_the_repository(document: Path):
    problems = [
        f"{target} {problem}"
        for target in _links(document.read_text(encoding="utf-8"))
        if (problem := _link_problem(document, target)) is not None
    ]
    assert problems == []


def test_the_docs_pages_exist_and_the_readme_links_them():
    names = {path.name for path in DOCS}
    assert {"api.md", "configuration.md", "sandboxes.md", "architecture.md"} <= names
    readme_links = set(_links(README.read_text(encoding="utf-8")))
    assert {f"docs/{name}" for name in names} <= {link.split("#", 1)[0] for link in readme_links}


def test_every_documented_route_is_served():
    routes = _documented_routes()
    assert len(routes) > 40
    problems = [
        f"{', '.join(methods)} {path} {problem}"
        for methods, path in routes
        if (problem := _route_problem(methods, path)) is not None
    ]
    assert problems == []


def test_every_served_route_is_documented():
    documented = _documented_routes()
    matches = [resolve(_sample_path(path)) for _, path in documented]
    documented_patterns = {match.route for match in matches}
    served = _served_routes(get_resolver().url_patterns)
    catch_all = {route for route in served if route.startswith("^(?!")}
    assert served - catch_all - documented_patterns == set()

    bot_actions = {bot_dispatch.parse_bot_path(_sample_path(path))[1] for path in _bot_paths(documented)}
    assert set(bot_dispatch.ACTIONS) - bot_actions == set()
    llm_actions = {
        match.kwargs.get("rest") or "" for match in matches if match.func is participant_llm.agent_llm
    }
    assert set(participant_llm.ROUTES) - llm_actions == set()


def _served_routes(patterns, prefix: str = "") -> set[str]:
    """The full route of every leaf pattern in the apps' urls.py; the admin counts as one `admin/` page."""
    routes: set[str] = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver) and route != "admin/":
            routes |= _served_routes(pattern.url_patterns, route)
        else:
            routes.add(route)
    return routes


def _bot_paths(routes: list[tuple[list[str], str]]) -> list[str]:
    return [path for _, path in routes if path.startswith("/api/bots/")]


@pytest.mark.parametrize(
    ("source", "target", "problem"),
    [
        (README, "../shared/spec/README.md", "leaves the repository"),
        (README, "https://github.com/OpenCSGs/csgclaw", "points outside the repository"),
        (README, "docs/missing.md", "names a file that does not exist"),
        (README, "docs/sandboxes.md#no-such-heading", 'names a heading "#no-such-heading"'),
        (README, "/etc/passwd", "is an absolute path"),
        (README, "http://127.0.0.1:18080/", None),
        (README, "docs/api.md#conventions", None),
    ],
)
def test_the_link_check_itself(source: Path, target: str, problem: str | None):
    found = _link_problem(source, target)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


def test_links_are_found_in_prose_but_not_in_code():
    text = (
        "See [spec](../shared/spec/README.md), <https://example.com/a> and https://example.org/b.\n"
        "`https://in.code/span` and [ref]: https://example.net/c\n"
        "```sh\ncurl https://in.fenced/block\n```\n"
    )
    links = _links(text)
    assert "../shared/spec/README.md" in links
    assert {"https://example.com/a", "https://example.org/b", "https://example.net/c"} <= set(links)
    assert not [link for link in links if "in.code" in link or "in.fenced" in link]


def test_every_make_target_the_readme_names_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))
    named = set(re.findall(r"`make ([a-z][a-z0-9-]*)", README.read_text(encoding="utf-8")))
    assert named and named - targets == set()
