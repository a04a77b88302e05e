"""WSGI entry point, for tools that need one; streams require the ASGI application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csgclaw_site.settings")

application = get_wsgi_application()
