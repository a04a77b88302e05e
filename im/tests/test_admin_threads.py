"""The Django admin shows thread replies under their root (threads-attachments.md §1), and thread states."""

from __future__ import annotations

import pytest

from im.models import Message, Thread
from im.services import thread_start
from im.tests.factories import make_message, seed_room

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


@pytest.fixture
def thread_rows():
    room = seed_room()
    root = make_message(room, content="plan the release")
    reply = make_message(room, content="on it")
    Message.objects.filter(pk=reply.pk).update(thread_root_id=root.message_id)
    thread_start(room_id=room.id, root_message_id=root.message_id)
    return root, reply


def test_a_roots_page_links_its_replies(admin_client, thread_rows):
    root, reply = thread_rows
    html = admin_client.get(f"/admin/im/message/{root.pk}/change/").content.decode()
    assert f'<a href="/admin/im/message/{reply.pk}/change/">{reply.message_id}</a> u-admin: on it' in html


def test_the_thread_filter_and_search_by_root_id(admin_client, thread_rows):
    root, reply = thread_rows
    replies = admin_client.get("/admin/im/message/", {"thread": "reply"}).content.decode()
    assert reply.message_id in replies
    assert f">{root.message_id}</a></th>" not in replies
    top = admin_client.get("/admin/im/message/", {"thread": "top"}).content.decode()
    assert f">{reply.message_id}</a></th>" not in top
    found = admin_client.get("/admin/im/message/", {"q": root.message_id}).content.decode()
    assert f">{reply.message_id}</a></th>" in found


def test_thread_states_are_listed_read_only(admin_client, thread_rows):
    root, _ = thread_rows
    thread = Thread.objects.get(root_message_id=root.message_id)
    listing = admin_client.get("/admin/im/thread/").content.decode()
    assert "plan the release" in listing
    assert admin_client.get(f"/admin/im/thread/{thread.pk}/change/").status_code == 200
    assert admin_client.get("/admin/im/thread/add/").status_code == 403
