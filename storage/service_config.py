"""Settings of a provider service (`spacereg provider serve`): a TOML file, then the
`SPACEREG_PROVIDER_*` environment variables, then command-line flags. Loaded like the
registry's (common/settings.py): wrong types and unknown keys are errors naming the key.

    name = "disk1"                      # the topic of its subscriptions
    host = "0.0.0.0"
    port = 9200
    public_url = "https://disk1.example.org"
    secret = "...at least 32 characters, shared with the registry..."
    data_dir = "/var/lib/spacereg-provider"
    driver = "local"
    [options]                           # the driver's options: the driver checks them
    root = "/srv/spaces"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, StrictInt, model_validator

from common.settings import EnvVar, SettingsError, TopSettings, load
from storage.signatures import MIN_SECRET_LENGTH

ENV_PREFIX = "SPACEREG_PROVIDER_"
ENV_OPTION_PREFIX = "SPACEREG_PROVIDER_OPTION_"  # SPACEREG_PROVIDER_OPTION_ROOT=/srv -> root


class ServiceConfigError(SettingsError):
    """The provider service's configuration cannot be used; the message names the key."""


class ServiceConfig(TopSettings):
    secret: Annotated[str, Field(min_length=MIN_SECRET_LENGTH, repr=False)]
    name: Annotated[str, Field(min_length=1)] = "provider"
    host: str = "127.0.0.1"
    port: Annotated[StrictInt, Field(gt=0, lt=65536)] = 9200
    public_url: str = ""  # default http(s)://host:port
    data_dir: Path = Path("var/provider")
    driver: str = "local"
    options: Mapping[str, Any] = Field(default_factory=dict)
    min_lease_seconds: Annotated[StrictInt, Field(ge=1)] = 60
    max_lease_seconds: StrictInt = 86400
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    @model_validator(mode="after")
    def _lease_bounds(self) -> ServiceConfig:
        if self.min_lease_seconds > self.max_lease_seconds:
            raise ValueError("min_lease_seconds: must not be more than max_lease_seconds")
        return self


# SPACEREG_PROVIDER_<KEY> for every key but `options`, which SPACEREG_PROVIDER_OPTION_* set.
ENVIRONMENT = {
    ENV_PREFIX + key.upper(): EnvVar((key,))
    for key in ServiceConfig.model_fields
    if key != "options"
}


def load_service_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServiceConfig:
    """The settings from `config_file`, `env` (default: this process's) and `overrides`
    (None values are flags not given). Raises ServiceConfigError naming each bad key."""
    env = os.environ if env is None else env
    options = {
        name: EnvVar(("options", name[len(ENV_OPTION_PREFIX) :].lower()), str)
        for name in env
        if name.startswith(ENV_OPTION_PREFIX)
    }
    variables = {**ENVIRONMENT, **options}
    config = load(ServiceConfig, config_file, env, variables, overrides or {}, ServiceConfigError)
    scheme = "https" if config.tls_certfile else "http"
    public_url = (config.public_url or f"{scheme}://{config.host}:{config.port}").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ServiceConfigError(f"public_url: {public_url!r} is not an absolute http(s) URL")
    driver_options = dict(config.options)
    if config.driver == "local" and "root" not in driver_options:
        driver_options["root"] = str(config.data_dir / "spaces")
    return config.model_copy(update={"public_url": public_url, "options": driver_options})
