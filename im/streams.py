"""The IM event stream (events.md §2): every `im` log event, unauthenticated, as `id:` + `data:` frames."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from core.http import method_not_allowed
from im.models import EventStream
from im.realtime.eventlog import EventSelection, LoggedEvent
from im.realtime.sse import Feed, event_stream_response


def im_event_data(event: LoggedEvent) -> dict[str, Any]:
    return event.payload


IM_FEED = Feed(selection=EventSelection(stream=EventStream.IM), data=im_event_data)


# Exempt like every /api/ route: a POST must get the contract's 405, not a CSRF 403.
@csrf_exempt
async def im_events(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed(request)
    return event_stream_response(request, IM_FEED)
