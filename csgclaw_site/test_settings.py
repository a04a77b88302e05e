"""Settings for the test suite: a throw-away state directory, the fake sandbox and short stream timings."""

import os
import tempfile

_TEST_HOME = tempfile.mkdtemp(prefix="csgclaw-test-home-")

for _name, _value in {
    "CSGCLAW_HOME": _TEST_HOME,
    "CSGCLAW_CONFIG": os.path.join(_TEST_HOME, "config.toml"),
    "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
    "CSGCLAW_SANDBOX_PROVIDER_CLASS": "sandbox.providers.fake.FakeProvider",
    "CSGCLAW_SANDBOX_INLINE": "true",
    "CSGCLAW_WORKER_INTRO_DELAY": "0",
    "CSGCLAW_SSE_HEARTBEAT": "0.2",
    "CSGCLAW_SSE_MAX_LIFETIME": "2",
    "CSGCLAW_SSE_POLL_INTERVAL": "0.1",
    "CSGCLAW_AGENT_STATUS_TTL": "0",
    "CSGCLAW_BOOTSTRAP_ON_START": "false",
}.items():
    os.environ[_name] = _value
# The scale-out path is tested explicitly (live multi-process tests); unit tests use the embedded default.
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

from csgclaw_site.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
