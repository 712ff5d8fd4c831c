"""Settings: read once at start-up from a TOML file, then `SPACEREG_*` environment variables.

Precedence, lowest first: built-in defaults, the TOML file, the environment, command-line flags.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from registry.auth.idp.users import DemoUser

GIB = 1024**3

__all__ = ["ConfigError", "DemoUser", "Issuer", "ProviderConfig", "Settings", "load_settings"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class Issuer:
    """An OpenID Connect issuer whose access tokens we accept."""

    url: str
    audience: str
    groups_claim: str | None = "groups"


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    driver: str
    options: Mapping[str, Any] = field(default_factory=dict)
    drive_types: tuple[str, ...] = ()  # types of new spaces this provider holds


@dataclass(frozen=True)
class FederationSettings:
    """Discovery of other registries (see federation/)."""

    dns_nameservers: tuple[str, ...] = ()
    allow_private_networks: tuple[str, ...] = ()
    allow_http: bool = False
    ca_file: str | None = None
    reveal_unknown_users: bool = False


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""
    domain: str = ""  # users are addressed as user@domain; default: base_url's host[:port]
    database_url: str = ""
    audience: str = "spacereg"
    issuers: tuple[Issuer, ...] = ()
    admin_users: tuple[str, ...] = ("admin",)
    admin_role: str = "spacereg-admin"
    roles_claim: str = "roles"
    default_project_quota: int = 10 * GIB
    default_personal_quota: int = 5 * GIB
    idp_users: tuple[DemoUser, ...] = ()
    providers: tuple[ProviderConfig, ...] = ()
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    # Change notifications: NATS JetStream fans changes out between replicas when set.
    nats_url: str = ""
    change_retention_days: int = 30
    delivery_max_age_seconds: int = 2 * 24 * 3600
    sse_keepalive_seconds: float = 15.0
    # How often workers look in the database for changes and deliveries nobody told them of.
    change_poll_seconds: float = 1.0
    federation: FederationSettings = FederationSettings()

    @property
    def embedded_idp(self) -> bool:
        """The embedded IdP runs when no external issuer is configured."""
        return not self.issuers

    @property
    def idp_issuer(self) -> str:
        return f"{self.base_url}/idp"

    def provider_for_type(self) -> dict[str, str]:
        """Which provider holds new spaces of each type (the first to name the type wins)."""
        chosen: dict[str, str] = {}
        for provider in self.providers:
            for drive_type in provider.drive_types:
                chosen.setdefault(drive_type, provider.name)
        return chosen

    def trusted_issuers(self) -> tuple[Issuer, ...]:
        if self.issuers:
            return self.issuers
        return (Issuer(url=self.idp_issuer, audience=self.audience),)


_SCALARS: dict[str, type] = {
    "data_dir": Path,
    "host": str,
    "port": int,
    "base_url": str,
    "domain": str,
    "database_url": str,
    "audience": str,
    "admin_role": str,
    "roles_claim": str,
    "default_project_quota": int,
    "default_personal_quota": int,
    "tls_certfile": str,
    "tls_keyfile": str,
    "nats_url": str,
    "change_retention_days": int,
    "delivery_max_age_seconds": int,
    "sse_keepalive_seconds": float,
    "change_poll_seconds": float,
}
_LISTS = {"admin_users"}


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
    raw.update(_from_env(env))
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return _build(raw)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in [*_SCALARS, *_LISTS]:
        value = env.get(f"SPACEREG_{key.upper()}")
        if value is not None:
            found[key] = _split(value) if key in _LISTS else value
    issuers = env.get("SPACEREG_TRUSTED_ISSUERS")
    if issuers is not None:
        found["issuers"] = [{"url": url} for url in _split(issuers)]
    federation: dict[str, Any] = {}
    if (servers := env.get("SPACEREG_DNS_NAMESERVERS")) is not None:
        federation["dns_nameservers"] = _split(servers)
    if (allowed := env.get("SPACEREG_ALLOW_PRIVATE_NETWORKS")) is not None:
        federation["allow_private_networks"] = _split(allowed)
    if (allow_http := env.get("SPACEREG_ALLOW_HTTP")) is not None:
        federation["allow_http"] = allow_http.lower() in {"1", "true", "yes"}
    if (ca_file := env.get("SPACEREG_CA_FILE")) is not None:
        federation["ca_file"] = ca_file
    if federation:
        found["federation"] = federation
    return found


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _build(raw: dict[str, Any]) -> Settings:
    unknown = set(raw) - {*_SCALARS, *_LISTS, "issuers", "idp_users", "providers", "federation"}
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, kind in _SCALARS.items():
        if key in raw:
            try:
                values[key] = kind(raw[key])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{key}: expected {kind.__name__}, got {raw[key]!r}") from exc
    if "admin_users" in raw:
        values["admin_users"] = tuple(str(u) for u in raw["admin_users"])
    settings = Settings(data_dir=values.pop("data_dir", Path("var")), **values)
    audience = settings.audience
    issuers = tuple(
        Issuer(
            url=str(item["url"]).rstrip("/"),
            audience=str(item.get("audience", audience)),
            groups_claim=item.get("groups_claim", "groups"),
        )
        for item in _table_list(raw, "issuers", required=("url",))
    )
    users = tuple(
        DemoUser(
            username=str(item["username"]),
            password=str(item["password"]),
            display_name=str(item.get("display_name", item["username"])),
            email=str(item.get("email", f"{item['username']}@example.org")),
            groups=tuple(item.get("groups", ())),
        )
        for item in _table_list(raw, "idp_users", required=("username", "password"))
    )
    providers = tuple(
        ProviderConfig(
            name=str(item["name"]),
            driver=str(item["driver"]),
            options={k: v for k, v in item.items() if k not in {"name", "driver", "drive_types"}},
            drive_types=tuple(str(t) for t in item.get("drive_types", ())),
        )
        for item in _table_list(raw, "providers", required=("name", "driver"))
    )
    federation = FederationSettings(**_federation(raw.get("federation", {})))
    return _with_derived_defaults(
        replace(
            settings, issuers=issuers, idp_users=users, providers=providers, federation=federation
        )
    )


def _table_list(raw: dict[str, Any], key: str, required: tuple[str, ...]) -> list[dict[str, Any]]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{key}: expected a list of tables")
    for item in items:
        missing = [name for name in required if name not in item]
        if missing:
            raise ConfigError(f"{key}: entry {item!r} lacks {', '.join(missing)}")
    return items


def _federation(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError("federation: expected a table")
    known = {
        "dns_nameservers",
        "allow_private_networks",
        "allow_http",
        "ca_file",
        "reveal_unknown_users",
    }
    if unknown := set(raw) - known:
        raise ConfigError(f"federation: unknown keys {', '.join(sorted(unknown))}")
    result = dict(raw)
    for key in ("dns_nameservers", "allow_private_networks"):
        if key in result:
            result[key] = tuple(str(v) for v in result[key])
    return result


def _with_derived_defaults(settings: Settings) -> Settings:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"port: {settings.port} is not a TCP port")
    scheme = "https" if settings.tls_certfile else "http"
    base_url = (settings.base_url or f"{scheme}://{settings.host}:{settings.port}").rstrip("/")
    if urlsplit(base_url).scheme not in {"http", "https"} or not urlsplit(base_url).netloc:
        raise ConfigError(f"base_url: {base_url!r} is not an absolute http(s) URL")
    database_url = settings.database_url or (
        f"sqlite+aiosqlite:///{(settings.data_dir / 'spacereg.db').resolve()}"
    )
    providers = settings.providers or (
        ProviderConfig(
            name="local", driver="local", options={"root": str(settings.data_dir / "spaces")}
        ),
    )
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigError("providers: names must be unique")
    for key in (
        "change_retention_days",
        "delivery_max_age_seconds",
        "sse_keepalive_seconds",
        "change_poll_seconds",
    ):
        if getattr(settings, key) <= 0:
            raise ConfigError(f"{key}: must be more than 0")
    domain = settings.domain or urlsplit(base_url).netloc
    return replace(
        settings, base_url=base_url, domain=domain, database_url=database_url, providers=providers
    )
