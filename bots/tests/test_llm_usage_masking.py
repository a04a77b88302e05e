"""Security S9 for the LLM usage log: upstream URLs and errors are stored with `user:pass@` masked."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bots.llm.usage import LlmCall, llm_call_record, llm_usage_writes_settled
from bots.models import LlmOutcome, LlmUsage

pytestmark = pytest.mark.timeout(10)

SECRET_BASE = "https://alice:pa@ss-9f2e@llm.example.test/v1"


@pytest.mark.django_db(transaction=True)
async def test_usage_rows_store_the_upstream_url_and_error_masked() -> None:
    call = LlmCall(
        agent_id="u-alice",
        model="gpt-5.4",
        provider="remote",
        upstream_url=f"{SECRET_BASE}/chat/completions",
        stream=False,
        started=0.0,
        created_at=timezone.now(),
    )
    call.failed(LlmOutcome.TRANSPORT_ERROR, f"send upstream request: bad URL {SECRET_BASE}/chat/completions")

    llm_call_record(call)
    await llm_usage_writes_settled()

    row = await LlmUsage.objects.aget()
    assert row.upstream_url == "https://***@llm.example.test/v1/chat/completions"
    assert row.error == "send upstream request: bad URL https://***@llm.example.test/v1/chat/completions"
