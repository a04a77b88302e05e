"""Django settings: everything comes from the environment (django-environ) and the state directory."""

import os
import secrets
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

CSGCLAW_HOME = Path(env.str("CSGCLAW_HOME", default="~/.csgclaw")).expanduser()
CSGCLAW_CONFIG = Path(env.str("CSGCLAW_CONFIG", default=str(CSGCLAW_HOME / "config.toml"))).expanduser()


def _help_only(argv: list[str]) -> bool:
    """`manage.py help [cmd]` or `manage.py <cmd> --help`: a question that must not write anything."""
    args = argv[1:]
    return bool(args) and (args[0] == "help" or "--help" in args or "-h" in args)


# Nothing is signed or stored while printing help, so it gets no state directory and a throw-away key.
_HELP_ONLY = Path(sys.argv[0]).name == "manage.py" and _help_only(sys.argv)


def _ensure_home() -> Path:
    if not _HELP_ONLY:
        CSGCLAW_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
    return CSGCLAW_HOME


def _state_secret_key() -> str:
    """The secret key kept in the state directory, generated once (0600) so sessions survive restarts."""
    path = _ensure_home() / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key


def _allowed_hosts() -> list[str]:
    """The Host names of security.md S3.1 for this process's config and listen address.

    `runserver`/`serve` compute them again once they know their addrport (server/startup.py).
    """
    from core.config import ConfigError, default_config, effective_listen_addr, load_config
    from core.config.hosts import allowed_hosts

    try:
        config = load_config(CSGCLAW_CONFIG)
    except ConfigError:
        config = default_config()
    try:
        listen_addr = effective_listen_addr(config, env.str("CSGCLAW_LISTEN_ADDR", default=""))
    except ConfigError:
        listen_addr = config.server.listen_addr
    return allowed_hosts(config, listen_addr, extra=CSGCLAW_EXTRA_ALLOWED_HOSTS)


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (
    secrets.token_urlsafe(50) if _HELP_ONLY else _state_secret_key()
)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Requests for any other Host are refused (DNS rebinding); boxes call the listen or advertised address.
CSGCLAW_EXTRA_ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
ALLOWED_HOSTS = _allowed_hosts()

INSTALLED_APPS = [
    # `server` provides the project's runserver, so it must come before daphne and staticfiles.
    "server",
    "agents",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files, served from /static/: the docs page works without the internet.
    "drf_spectacular_sidecar",
    "im",
    "bots",
]

MIDDLEWARE = [
    # Host check, cross-site writes and remote credentials (security.md S3, S4), before anything else.
    "server.middleware.AccessMiddleware",
    "core.http.ApiErrorMiddleware",
    # Sessions, auth, CSRF, messages and security headers, for the admin and the web page only.
    "server.middleware.SitePagesMiddleware",
]
# The admin's checks look for its middleware by name in MIDDLEWARE; SitePagesMiddleware runs them.
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

# The `/login` session (security.md S4); AccessMiddleware adds Secure to the cookie over HTTPS.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Behind a proxy that terminates TLS, the browser's Origin is https while the request reaching us is http:
# trusting the proxy's X-Forwarded-Proto keeps same-origin writes from looking cross-site (security S3.2).
if env.bool("CSGCLAW_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

ROOT_URLCONF = "csgclaw_site.urls"
ASGI_APPLICATION = "csgclaw_site.asgi.application"
WSGI_APPLICATION = "csgclaw_site.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{_ensure_home() / 'csgclaw.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "core.db.sqlite"
    # IMMEDIATE makes writers take the lock at BEGIN, so commit order equals event seq order;
    # WAL lets the streams read while a writer commits.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES["default"].setdefault("TEST", {})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = CSGCLAW_HOME / "static"

# Bodies are read and limited by core.http (1 MiB, 10 MiB for the LLM proxy) with the spec's 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
# Routes read only the parameters they know (the first value of each), so a long query string is no
# reason to fail; Daphne already bounds the request line.
DATA_UPLOAD_MAX_NUMBER_FIELDS = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.http.drf_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",
}

# The OpenAPI schema at /api/schema/ and its Swagger UI at /api/docs/ (docs/api.md); the routes that are
# not DRF views (streams, the /api/bots/ bridge, the LLM proxy) are described by core.openapi.
SPECTACULAR_SETTINGS = {
    "TITLE": "CSGClaw API",
    "DESCRIPTION": "The HTTP API of the CSGClaw server: IM, agents, bots, event streams and the LLM proxy.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "GET_LIB_DOC_EXCLUDES": "core.openapi.lib_doc_excludes",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.postprocess_schema",
    ],
}

LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {"django": {"level": LOG_LEVEL, "propagate": True}},
}

REDIS_URL = env.str("REDIS_URL", default="")

# Streams (events.md §1.2, §5.4): a ping keeps proxies and clients from timing out an idle stream;
# the lifetime cap bounds Daphne's unbounded write buffer for a client that stopped reading.
CSGCLAW_SSE_HEARTBEAT = env.float("CSGCLAW_SSE_HEARTBEAT", default=15.0)
CSGCLAW_SSE_MAX_LIFETIME = env.float("CSGCLAW_SSE_MAX_LIFETIME", default=1800.0)
# Open streams per process (security.md S7.2): each holds a doorbell, a task and up to 1 MiB of
# unsent frames (server.daphne_guards); one more gets 503 `too many open streams`.
CSGCLAW_SSE_MAX_STREAMS = env.int("CSGCLAW_SSE_MAX_STREAMS", default=2000)
# A lost doorbell (another process without Redis) costs at most this much latency.
CSGCLAW_SSE_POLL_INTERVAL = env.float("CSGCLAW_SSE_POLL_INTERVAL", default=5.0)
CSGCLAW_SSE_BATCH = env.int("CSGCLAW_SSE_BATCH", default=100)
CSGCLAW_STREAM_RESUME_WINDOW = env.float("CSGCLAW_STREAM_RESUME_WINDOW", default=600.0)
# A participant stream replays unanswered human messages this recent (participants.md §2.6), as upstream's
# 30-minute "recent unanswered" window.
CSGCLAW_PARTICIPANT_REPLAY_WINDOW = env.float("CSGCLAW_PARTICIPANT_REPLAY_WINDOW", default=1800.0)
CSGCLAW_EVENT_RETENTION_DAYS = env.float("CSGCLAW_EVENT_RETENTION_DAYS", default=7.0)
CSGCLAW_WORKER_INTRO_DELAY = env.float("CSGCLAW_WORKER_INTRO_DELAY", default=1.0)
CSGCLAW_AGENT_STATUS_TTL = env.float("CSGCLAW_AGENT_STATUS_TTL", default=5.0)
CSGCLAW_BOOTSTRAP_ON_START = env.bool("CSGCLAW_BOOTSTRAP_ON_START", default=True)
CSGCLAW_AUTO_MIGRATE = env.bool("CSGCLAW_AUTO_MIGRATE", default=True)
CSGCLAW_SANDBOX_PROVIDER_CLASS = env.str("CSGCLAW_SANDBOX_PROVIDER_CLASS", default="")
CSGCLAW_SANDBOX_INLINE = env.bool("CSGCLAW_SANDBOX_INLINE", default=False)
CSGCLAW_SANDBOX_WORKERS = env.int("CSGCLAW_SANDBOX_WORKERS", default=4)
CSGCLAW_LLM_REQUEST_TIMEOUT = env.float("CSGCLAW_LLM_REQUEST_TIMEOUT", default=None)
CSGCLAW_LLM_IDLE_TIMEOUT = env.float("CSGCLAW_LLM_IDLE_TIMEOUT", default=None)
CSGCLAW_LLM_INCLUDE_STREAM_USAGE = env.bool("CSGCLAW_LLM_INCLUDE_STREAM_USAGE", default=False)
CSGCLAW_FEISHU_BASE_URL = env.str("CSGCLAW_FEISHU_BASE_URL", default="https://open.feishu.cn")
CSGCLAW_LISTEN_ADDR = env.str("CSGCLAW_LISTEN_ADDR", default="")
# Any non-empty CI value disables interactive prompts (onboard).
CI = bool(env.str("CI", default=""))
