"""The Django admin's message list (http-api.md §10.2) shows each message's text."""

from __future__ import annotations

import pytest

from im.admin import CONTENT_PREVIEW
from im.tests.factories import make_message, seed_room


@pytest.mark.django_db
@pytest.mark.timeout(30)
def test_message_list_shows_the_text_on_one_line(admin_client):
    room = seed_room()
    make_message(room, content="## Plan\n\n- write the **notes**\n- ship")

    response = admin_client.get("/admin/im/message/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<th scope="col" class="column-short_content">' in html
    assert '<td class="field-short_content">## Plan - write the **notes** - ship</td>' in html
    assert '<td class="field-short_content">Bootstrap room created for admin and manager.</td>' in html


@pytest.mark.django_db
@pytest.mark.timeout(30)
def test_long_text_is_cut_with_an_ellipsis(admin_client):
    make_message(seed_room(), content="x" * 500)

    html = admin_client.get("/admin/im/message/").content.decode()

    assert "x" * (CONTENT_PREVIEW - 1) + "…</td>" in html
    assert "x" * CONTENT_PREVIEW not in html
