"""config.toml: the only code that reads or writes it (load, expand env, validate, save).

Import from `core.config`; the modules below split it by concept of config-and-commands.md:

- schema: defaults, errors and the dataclasses the other modules fill in
- env: `$NAME` / `${NAME:-default}` expansion of string values (§4)
- normalise: trimming, de-duplication and defaults, the same on load and save (§3)
- layout: every key of the canonical file in order, shared by load, save and render (§3)
- load: reading, legacy-section rejection and typed parsing (§5.1)
- cache: the per-process cache of the loaded file (§5.1)
- save: atomic writes that keep comments and placeholders (§5.2)
- resolve: model selectors, their resolution and the validation of [models] (§6)
- base_urls: the bind address, the API base and the base boxes call back on (§7)
- render: the masked effective config for the start-up log (§8)
- csghub_lite: the local model server's discovery and detection (§9.4)
"""

from core.config.base_urls import (
    api_base_url,
    box_facing_base_url,
    effective_listen_addr,
    lan_ipv4,
    llm_bridge_url,
)
from core.config.cache import (
    clear_config_cache,
    get_config,
    get_config_or_default,
    last_loaded_config,
)
from core.config.csghub_lite import (
    CSGHUB_LITE_PORT,
    CSGHUB_LITE_PROVIDER,
    DEFAULT_CSGHUB_LITE_API_KEY,
    DEFAULT_CSGHUB_LITE_BASE_URL,
    csghub_lite_unreachable_message,
    discover_csghub_lite_models,
    is_csghub_lite,
)
from core.config.env import expand_env
from core.config.load import config_path, default_config, load_config
from core.config.render import mask_secret, mask_url_credentials, render_effective_config
from core.config.resolve import (
    canonical_selector,
    llm_timeouts,
    missing_model_flags,
    resolve_model,
    split_selector,
    validate_models,
)
from core.config.save import GENERATED_HEADER, save_config
from core.config.schema import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_BOXLITE_CLI_PATH,
    DEFAULT_DEBIAN_REGISTRIES,
    DEFAULT_DOCKER_PATH,
    DEFAULT_HOME_DIR_NAME,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LISTEN_ADDR,
    DEFAULT_LOCAL_ISOLATION,
    DEFAULT_MANAGER_IMAGE,
    DEFAULT_PICOCLAW_PATH,
    DEFAULT_PORT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SANDBOX_PROVIDER,
    DEFAULT_SANDBOX_RUNTIME,
    LLM_API_PROVIDER_TYPE,
    BootstrapConfig,
    Config,
    ConfigError,
    ConfigNotFound,
    FeishuApp,
    FeishuConfig,
    ModelResolutionError,
    ModelsConfig,
    ModelsConfigError,
    ProviderConfig,
    ResolvedModel,
    SandboxConfig,
    ServerConfig,
)

__all__ = [
    "CSGHUB_LITE_PORT",
    "CSGHUB_LITE_PROVIDER",
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_BOXLITE_CLI_PATH",
    "DEFAULT_CSGHUB_LITE_API_KEY",
    "DEFAULT_CSGHUB_LITE_BASE_URL",
    "DEFAULT_DEBIAN_REGISTRIES",
    "DEFAULT_DOCKER_PATH",
    "DEFAULT_HOME_DIR_NAME",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_LISTEN_ADDR",
    "DEFAULT_LOCAL_ISOLATION",
    "DEFAULT_MANAGER_IMAGE",
    "DEFAULT_PICOCLAW_PATH",
    "DEFAULT_PORT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SANDBOX_PROVIDER",
    "DEFAULT_SANDBOX_RUNTIME",
    "GENERATED_HEADER",
    "LLM_API_PROVIDER_TYPE",
    "BootstrapConfig",
    "Config",
    "ConfigError",
    "ConfigNotFound",
    "FeishuApp",
    "FeishuConfig",
    "ModelResolutionError",
    "ModelsConfig",
    "ModelsConfigError",
    "ProviderConfig",
    "ResolvedModel",
    "SandboxConfig",
    "ServerConfig",
    "api_base_url",
    "box_facing_base_url",
    "canonical_selector",
    "clear_config_cache",
    "config_path",
    "csghub_lite_unreachable_message",
    "default_config",
    "discover_csghub_lite_models",
    "effective_listen_addr",
    "expand_env",
    "get_config",
    "get_config_or_default",
    "is_csghub_lite",
    "lan_ipv4",
    "last_loaded_config",
    "llm_bridge_url",
    "llm_timeouts",
    "load_config",
    "mask_secret",
    "mask_url_credentials",
    "missing_model_flags",
    "render_effective_config",
    "resolve_model",
    "save_config",
    "split_selector",
    "validate_models",
]
