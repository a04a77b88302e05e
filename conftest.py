"""Shared pytest fixtures, one module per concept under csgclaw_site/testing/.

`daphne_server` / `daphne_factory` / `live_state_factory`: live Daphne servers in subprocesses (live.py);
`asgi_stream`: a stream on Django's ASGI application in-process (streams.py); the file-backed SQLite test
database (database.py); `postgres_url` / `redis_url`: the scale-out services on loopback (scaleout.py).
"""

pytest_plugins = [
    "csgclaw_site.testing.database",
    "csgclaw_site.testing.live",
    "csgclaw_site.testing.scaleout",
    "csgclaw_site.testing.streams",
]
