"""Every route of the contract (spec/README.md), included from each app; any other path is a 404."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import http

handler404 = "core.http.handler404"
handler500 = "core.http.handler500"

# No two apps' routes overlap, so their order here is free; within an app, fixed paths come first.
urlpatterns = [
    path("", include("im.urls")),
    path("", include("agents.urls")),
    path("", include("bots.urls")),
    path("", include("server.urls")),
    path("admin/", admin.site.urls),
    # GET only: HEAD and OPTIONS are 405 on every /api/ route (http-api.md §1.1), where DRF would answer
    # both itself (OPTIONS on the docs page with a 500).
    path("api/schema/", SpectacularAPIView.as_view(http_method_names=["get"]), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get"]), name="docs"
    ),
    re_path(r"^(?!admin/|static/)", http.not_found),
]
