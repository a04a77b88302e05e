"""The per-process cache of the loaded config.toml (spec §5.1)."""

from __future__ import annotations

import threading
from pathlib import Path

from core.config.load import config_path, default_config, load_config
from core.config.schema import Config, ConfigError, ConfigNotFound

_cache_lock = threading.Lock()
_cache: tuple[Path, tuple[int, int, int], Config] | None = None


def get_config() -> Config:
    """The loaded config.toml, cached per process and reloaded when the file's mtime or size changes.

    The returned object is shared between callers: treat it as read-only and use load_config() for a
    copy to edit. Raises like load_config().
    """
    global _cache
    path = config_path()
    with _cache_lock:
        stamp = _file_stamp(path)
        if _cache is not None and stamp is not None and _cache[:2] == (path, stamp):
            return _cache[2]
        config = load_config(path)
        _cache = (path, stamp, config) if stamp is not None else None
        return config


def get_config_or_default() -> tuple[Config, ConfigError | None]:
    """For the server: the cached config, or the defaults when it cannot be used.

    A missing file is not an error here (the server runs with defaults and no model providers), so it
    returns (default_config(), None); any other load failure returns (default_config(), error) for the
    caller to log as a warning.
    """
    try:
        return get_config(), None
    except ConfigNotFound:
        return default_config(), None
    except ConfigError as exc:
        return default_config(), exc


def last_loaded_config() -> Config | None:
    """The config last loaded from the current path, also after the file has since failed to load
    (an edit in progress); None when none was loaded since the cache was last cleared."""
    path = config_path()
    with _cache_lock:
        return _cache[2] if _cache is not None and _cache[0] == path else None


def clear_config_cache() -> None:
    """Forget the cached config (tests rewrite files faster than the file system's mtime resolution)."""
    global _cache
    with _cache_lock:
        _cache = None


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    # The inode is part of the stamp because save_config() replaces the file rather than rewriting it.
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
