"""The interactive model-provider setup of onboard (spec config-and-commands §9.3)."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import OutputWrapper

from core.config import (
    CSGHUB_LITE_PROVIDER,
    DEFAULT_CSGHUB_LITE_API_KEY,
    DEFAULT_CSGHUB_LITE_BASE_URL,
    Config,
    ProviderConfig,
    mask_url_credentials,
)
from server.onboarding import (
    CUSTOM_PROVIDER,
    OnboardError,
    apply_csghub_lite,
    apply_custom_provider,
    current_provider_name,
    custom_provider_name,
    discover_models,
    parse_list,
)

KEEP_CURRENT = "keep current"

FRESH_INTRO = f"""\
No model provider is configured yet. Choose one:
  1. csghub-lite  local models served by CSGHub-lite (default URL {DEFAULT_CSGHUB_LITE_BASE_URL});
                  start it with `csghub-lite run <model>` or `csghub-lite serve`;
                  the models are discovered from its /models endpoint
  2. custom       any OpenAI-compatible API: base URL, API key and models"""


class ModelSettingsPrompts:
    """Asks on stdin for the model provider and its settings, writing questions and findings to `stdout`."""

    def __init__(self, stdout: OutputWrapper) -> None:
        self.stdout = stdout

    def ask(self, prompt: str) -> str:
        """One line from stdin, trimmed; EOF is an empty answer."""
        self.stdout.write(prompt, ending="")
        self.stdout.flush()
        return sys.stdin.readline().strip()

    def ask_hidden(self, prompt: str) -> str:
        """Like ask, but the terminal does not echo what is typed (a secret)."""
        try:
            return getpass.getpass(prompt, stream=PromptStream(self.stdout)).strip()
        except EOFError:
            return ""

    def ask_value(
        self, label: str, current: str, *, hint: str = "", prompt_label: str = "", hidden: bool = False
    ) -> str:
        """`<label> [<hint>]: `; an empty answer keeps `current`, and one of the two is required."""
        prompt_label = prompt_label or label
        prompt = f"{prompt_label} [{hint or current}]: " if current else f"{prompt_label}: "
        value = (self.ask_hidden(prompt) if hidden else self.ask(prompt)) or current
        if not value:
            raise OnboardError(f"{label} is required")
        return value

    def choose(self, prompt: str, options: tuple[str, ...]) -> str:
        """A listed option by number or case-insensitive name; empty picks the first (the default)."""
        answer = self.ask(prompt)
        accepted = {str(number): option for number, option in enumerate(options, start=1)}
        accepted.update({option: option for option in options})
        if KEEP_CURRENT in options:
            accepted["keep"] = KEEP_CURRENT
        if not answer:
            return options[0]
        if answer.lower() in accepted:
            return accepted[answer.lower()]
        raise OnboardError(
            f'unsupported provider selection "{answer}"; enter "csghub-lite", "custom", or a listed number'
        )

    def prompt_model_settings(self, config: Config) -> None:
        current = config.models.providers.get(current_provider_name(config))
        if current is None:
            self.stdout.write(FRESH_INTRO)
            choice = self.choose(
                f"Provider [{CSGHUB_LITE_PROVIDER}]: ", (CSGHUB_LITE_PROVIDER, CUSTOM_PROVIDER)
            )
        else:
            self.show_current(config, current)
            choice = self.choose(
                f"Provider [{KEEP_CURRENT}: {current.name}]: ",
                (KEEP_CURRENT, CSGHUB_LITE_PROVIDER, CUSTOM_PROVIDER),
            )
        if choice == CSGHUB_LITE_PROVIDER:
            self.prompt_csghub_lite(config)
        elif choice == CUSTOM_PROVIDER:
            self.prompt_custom(config)
        else:
            default = config.models.default or current.name
            self.stdout.write(f'Keeping model provider "{current.name}" (default model {default}).')

    def show_current(self, config: Config, provider: ProviderConfig) -> None:
        # The API key is never shown, not even masked.
        self.stdout.write(
            "Current model settings:\n"
            f"  Provider: {provider.name}\n"
            f"  Base URL: {mask_url_credentials(provider.base_url)}\n"
            f"  Models: {', '.join(provider.models)}\n"
            f"  Default model: {config.models.default or '(not set)'}\n"
            f"  Reasoning effort: {provider.reasoning_effort or '(not set)'}\n"
            "Choose a model provider:\n"
            f"  1. {KEEP_CURRENT}\n"
            f"  2. {CSGHUB_LITE_PROVIDER}\n"
            f"  3. {CUSTOM_PROVIDER}"
        )

    def prompt_csghub_lite(self, config: Config) -> None:
        existing = config.models.providers.get(CSGHUB_LITE_PROVIDER)
        current_url = (existing.base_url if existing is not None else "") or DEFAULT_CSGHUB_LITE_BASE_URL
        base_url = self.ask_value("CSGHub-lite base URL", current_url).rstrip("/")
        self.stdout.write(f"Checking CSGHub-lite models at {mask_url_credentials(base_url)}/models ...")
        self.stdout.flush()
        models = discover_models(base_url, DEFAULT_CSGHUB_LITE_API_KEY)
        apply_csghub_lite(
            config,
            base_url=base_url,
            api_key=DEFAULT_CSGHUB_LITE_API_KEY,
            models=models,
            reasoning_effort=None,
            keep_default=False,
        )
        self.stdout.write(f"Found {len(models)} model(s): {', '.join(models)}")
        self.stdout.write(f"Default model: {config.models.default}")

    def prompt_custom(self, config: Config) -> None:
        name = custom_provider_name(config, chosen=True)
        provider = config.models.providers.get(name) or ProviderConfig(name=name)
        base_url = self.ask_value("Base URL", provider.base_url)
        api_key = self.ask_value("API key", provider.api_key, hint="keep existing", hidden=True)
        answer = self.ask_value("Models", ",".join(provider.models), prompt_label="Models (comma-separated)")
        models = parse_list(answer)
        if not models:
            raise OnboardError("Models is required")
        apply_custom_provider(
            config, base_url=base_url, api_key=api_key, models=models, reasoning_effort=None, chosen=True
        )
        self.stdout.write(f'Custom provider saved as "{name}".')
        self.stdout.write(f"Default model: {config.models.default}")


class PromptStream:
    """The file-like stream getpass writes its prompt to: our stdout, without the wrapper's newline."""

    def __init__(self, stdout: OutputWrapper) -> None:
        self.stdout = stdout

    def write(self, text: str) -> None:
        self.stdout.write(text, ending="")

    def flush(self) -> None:
        self.stdout.flush()
