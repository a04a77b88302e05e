"""The IM workspace page (http-api.md §10.1): a static shell; the browser reads all data from the API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from core.http import method_not_allowed


# Exempt so that a POST gets the contract's 405 instead of a CSRF 403; the page itself has no form posts.
@csrf_exempt
def workspace(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed(request)
    return render(request, "im/workspace.html")
