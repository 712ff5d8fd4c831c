"""Settings of a provider service (`spacereg provider serve`): a TOML file, then the
`SPACEREG_PROVIDER_*` environment variables, then command-line flags.

    name = "disk1"                      # the topic of its subscriptions
    host = "0.0.0.0"
    port = 9200
    public_url = "https://disk1.example.org"
    secret = "...at least 32 characters, shared with the registry..."
    data_dir = "/var/lib/spacereg-provider"
    driver = "local"
    [options]
    root = "/srv/spaces"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.signatures import MIN_SECRET_LENGTH

ENV_PREFIX = "SPACEREG_PROVIDER_"
ENV_OPTION_PREFIX = "SPACEREG_PROVIDER_OPTION_"  # SPACEREG_PROVIDER_OPTION_ROOT=/srv -> root

_SCALARS: dict[str, type] = {
    "name": str,
    "host": str,
    "port": int,
    "public_url": str,
    "secret": str,
    "data_dir": Path,
    "driver": str,
    "min_lease_seconds": int,
    "max_lease_seconds": int,
    "tls_certfile": str,
    "tls_keyfile": str,
}


class ServiceConfigError(Exception):
    """The provider service's configuration cannot be used; the message names the key."""


@dataclass(frozen=True)
class ServiceConfig:
    secret: str
    name: str = "provider"
    host: str = "127.0.0.1"
    port: int = 9200
    public_url: str = ""  # default http(s)://host:port
    data_dir: Path = Path("var/provider")
    driver: str = "local"
    options: Mapping[str, Any] = field(default_factory=dict)
    min_lease_seconds: int = 60
    max_lease_seconds: int = 86400
    tls_certfile: str | None = None
    tls_keyfile: str | None = None


def load_service_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServiceConfig:
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ServiceConfigError(f"cannot read config file {config_file}: {exc}") from exc
    for key in _SCALARS:
        if (value := env.get(ENV_PREFIX + key.upper())) is not None:
            raw[key] = value
    env_options = {
        key[len(ENV_OPTION_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_OPTION_PREFIX)
    }
    if env_options:
        raw["options"] = {**_table(raw.get("options", {})), **env_options}
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return _build(raw)


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ServiceConfigError("options: expected a table")
    return value


def _build(raw: dict[str, Any]) -> ServiceConfig:
    if unknown := set(raw) - {*_SCALARS, "options"}:
        raise ServiceConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, kind in _SCALARS.items():
        if key in raw:
            try:
                values[key] = kind(raw[key])
            except (TypeError, ValueError) as exc:
                raise ServiceConfigError(
                    f"{key}: expected {kind.__name__}, got {raw[key]!r}"
                ) from exc
    secret = values.pop("secret", "")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ServiceConfigError(f"secret: required, at least {MIN_SECRET_LENGTH} characters")
    options = dict(_table(raw.get("options", {})))
    config = ServiceConfig(secret=secret, options=options, **values)
    if not config.name:
        raise ServiceConfigError("name: must not be empty")
    if not 0 < config.port < 65536:
        raise ServiceConfigError(f"port: {config.port} is not a TCP port")
    if not 1 <= config.min_lease_seconds <= config.max_lease_seconds:
        raise ServiceConfigError("min_lease_seconds must be at least 1 and <= max_lease_seconds")
    scheme = "https" if config.tls_certfile else "http"
    public_url = (config.public_url or f"{scheme}://{config.host}:{config.port}").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ServiceConfigError(f"public_url: {public_url!r} is not an absolute http(s) URL")
    if config.driver == "local" and "root" not in options:
        options["root"] = str(config.data_dir / "spaces")
    return replace(config, public_url=public_url, options=options)
