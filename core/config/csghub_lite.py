"""csghub-lite, the local model server (spec §9.4): model discovery, the not-reachable advice, detection."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from core.config.normalise import _unique
from core.config.render import mask_url_credentials
from core.config.schema import ConfigError, ProviderConfig

CSGHUB_LITE_PROVIDER = "csghub-lite"
DEFAULT_CSGHUB_LITE_BASE_URL = "http://127.0.0.1:11435/v1"
DEFAULT_CSGHUB_LITE_API_KEY = "local"
CSGHUB_LITE_PORT = 11435


def discover_csghub_lite_models(
    base_url: str, api_key: str = DEFAULT_CSGHUB_LITE_API_KEY, timeout: float = 2.0
) -> list[str]:
    """The model ids csghub-lite serves (`GET <base>/models`), trimmed and de-duplicated in order."""
    base = base_url.strip().rstrip("/")
    api_key = api_key.strip()
    # httpx cannot send such a key: UnicodeEncodeError for non-ASCII, and for control characters an error
    # whose message quotes the whole key.
    if not (api_key.isascii() and api_key.isprintable()):
        raise ConfigError(
            f"request models from {base}: the API key must be printable ASCII for an Authorization header"
        )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base}/models", headers=headers, timeout=timeout)
    # An unparsable base URL is no HTTPError: InvalidURL, or a UnicodeError (a ValueError) from IDNA.
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"request models from {base}: {exc}") from exc
    if not response.is_success:
        raise ConfigError(f"request models from {base}: status {response.status_code}")
    try:
        payload = response.json()
    except ValueError as exc:
        raise ConfigError(f"decode models from {base}: {exc}") from exc
    entries = payload.get("data") if isinstance(payload, dict) else None
    ids = _unique(
        entry["id"]
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    )
    if not ids:
        raise ConfigError(f"no models returned from {base}")
    return ids


def csghub_lite_unreachable_message(base: str, error: object, *, subject: str = "csghub-lite") -> str:
    """The §9.4 advice; the start-up bootstrap passes subject="csghub-lite provider" (spec §10.1).

    It is printed and logged, so credentials in the base URL are masked (security S9).
    """
    return mask_url_credentials(
        f"{subject} is not reachable at {base} ({error}); "
        "start it with `csghub-lite run <model>` or `csghub-lite serve`, then retry"
    )


def is_csghub_lite(provider: ProviderConfig) -> bool:
    """Whether a provider is csghub-lite: by name, or by its default local address (spec §10.1)."""
    if provider.name == CSGHUB_LITE_PROVIDER:
        return True
    try:
        url = urlsplit(provider.base_url.strip())
        return url.hostname in ("127.0.0.1", "localhost") and url.port == CSGHUB_LITE_PORT
    except ValueError:
        return False
