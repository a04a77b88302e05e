"""Mention resolution: `<at user_id="ID">Name</at>` tags first, then `@handle` tokens (http-api.md §2.6)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

AT_TAG = re.compile(r'<at user_id="([^"]+)">.*?</at>')
# `@` at the start or after a character outside [A-Za-z0-9_], so `mail@alice` is not a mention.
HANDLE_TOKEN = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9._-]+)", re.ASCII)


def tagged_ids(content: str) -> list[str]:
    return AT_TAG.findall(content)


def handle_tokens(content: str) -> list[str]:
    return [token.lower() for token in HANDLE_TOKEN.findall(content)]


def resolve_mentions(
    content: str,
    *,
    existing_ids: Callable[[Iterable[str]], set[str]],
    ids_by_handle: Callable[[Iterable[str]], dict[str, str]],
) -> list[str]:
    """Mentioned user ids in order of appearance per syntax, de-duplicated (first occurrence wins).

    The lookups are passed in so that resolution costs at most two queries whatever the content.
    """
    tags = tagged_ids(content)
    tokens = handle_tokens(content)
    known = existing_ids(tags) if tags else set()
    handles = ids_by_handle(tokens) if tokens else {}
    resolved = [user_id for user_id in tags if user_id in known]
    resolved += [handles[token] for token in tokens if token in handles]
    return list(dict.fromkeys(resolved))


def at_tag(user_id: str, name: str) -> str:
    return f'<at user_id="{user_id}">{name}</at>'
