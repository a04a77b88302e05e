"""ASGI entry point: Daphne serves REST, streams, the LLM proxy, the web UI and admin through it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csgclaw_site.settings")

application = get_asgi_application()
