"""The Django admin of LLM usage (bots/admin.py): read-only rows, and an agent's totals on its admin page."""

from __future__ import annotations

from typing import Any

import pytest

from bots.models import LlmOutcome, LlmUsage
from bots.tests.llm_bridge import AGENT_ID, MODEL, UPSTREAM_URL

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("default_config"),
]


def make_usage_row(**fields: Any) -> LlmUsage:
    values = {
        "agent_id": AGENT_ID,
        "model": MODEL,
        "provider": "remote",
        "upstream_url": UPSTREAM_URL,
        "outcome": LlmOutcome.OK,
        "status_code": 200,
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "total_tokens": 8,
        "latency_ms": 12.5,
        **fields,
    }
    return LlmUsage.objects.create(**values)


def test_usage_admin_is_read_only_and_filterable(admin_client):
    row = make_usage_row()

    listing = admin_client.get("/admin/bots/llmusage/", {"outcome": "ok", "stream__exact": "0"})
    filtered_out = admin_client.get("/admin/bots/llmusage/", {"agent_id": "u-other"})
    detail = admin_client.get(f"/admin/bots/llmusage/{row.pk}/change/")
    add = admin_client.get("/admin/bots/llmusage/add/")
    delete = admin_client.post(f"/admin/bots/llmusage/{row.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert filtered_out.context["cl"].result_count == 0
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert (add.status_code, delete.status_code) == (403, 403)
    assert LlmUsage.objects.count() == 1


def test_agent_admin_shows_call_count_and_token_sums(admin_client, agent):
    make_usage_row()
    make_usage_row(prompt_tokens=10, completion_tokens=None, total_tokens=10)
    make_usage_row(agent_id="u-other", prompt_tokens=100)

    page = admin_client.get(f"/admin/agents/agent/{AGENT_ID}/change/")

    assert page.status_code == 200
    assert "2 calls; tokens: 13 prompt, 5 completion, 18 total" in page.content.decode()
