"""Settings: read once at start-up, then passed down.

Precedence, lowest first: built-in defaults, the TOML file (`--config`), `SPACEREG_*`
environment variables, command-line flags. The loading is shared with the provider service
(common/settings.py): a value of the wrong type is refused with its key named, never coerced,
and unknown keys are errors at every level, except the driver options of a `[[providers]]`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from common.settings import EnvVar, SettingsError, Table, TopSettings, comma_list, load
from registry.auth.idp.users import DemoUser

GIB = 1024**3

__all__ = [
    "ConfigError",
    "DemoUser",
    "FederationSettings",
    "Issuer",
    "ProviderConfig",
    "Settings",
    "load_settings",
]

Port = Annotated[StrictInt, Field(gt=0, lt=65536)]
Bytes = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
PositiveFloat = Annotated[StrictFloat, Field(gt=0)]


class ConfigError(SettingsError):
    """The configuration cannot be used; the message names the offending key."""


class Issuer(Table):
    """An OpenID Connect issuer whose access tokens we accept."""

    url: str
    audience: str = ""  # empty: the registry's `audience`
    groups_claim: str | None = "groups"

    @field_validator("url")
    @classmethod
    def _without_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")


class ProviderConfig(Table):
    """A `[[providers]]` table. Its other keys are the driver's options: the driver checks them."""

    model_config = ConfigDict(extra="allow")

    name: str
    driver: str
    drive_types: tuple[str, ...] = ()  # types of new spaces this provider holds

    @property
    def options(self) -> Mapping[str, Any]:
        return dict(self.model_extra or {})


def _ip_network(text: str) -> str:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP network (like 10.0.0.0/8)") from None
    return text.strip()


class FederationSettings(Table):
    """Discovery of other registries (see federation/)."""

    dns_nameservers: tuple[str, ...] = ()
    allow_private_networks: tuple[Annotated[str, AfterValidator(_ip_network)], ...] = ()
    allow_http: StrictBool = False
    ca_file: str | None = None
    reveal_unknown_users: StrictBool = False
    # True: any discoverable registry may peer with us without an invitation (signed still)
    open_peering: StrictBool = False
    # True: a share from any discoverable registry is taken, peer or not (signed still)
    open_shares: StrictBool = False
    # Each partner's signed requests, per replica: this many a second on average, this many
    # at once; beyond, 429 `peer_rate_limited` with Retry-After.
    peer_requests_per_second: PositiveFloat = 50.0
    peer_request_burst: PositiveInt = 200


class Settings(TopSettings):
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: Port = 8080
    base_url: str = ""  # default: http(s)://host:port
    domain: str = ""  # users are addressed as user@domain; default: base_url's host[:port]
    database_url: str = ""  # default: SQLite in data_dir
    audience: str = "spacereg"
    issuers: tuple[Issuer, ...] = ()
    admin_users: tuple[str, ...] = ("admin",)
    admin_role: str = "spacereg-admin"
    roles_claim: str = "roles"
    # The web UI as a client of the first issuer (an external one registers it; a secret
    # makes it confidential there). The embedded IdP takes any client id.
    web_client_id: str = "spacereg-web"
    web_client_secret: str = ""
    default_project_quota: Bytes = 10 * GIB
    default_personal_quota: Bytes = 5 * GIB
    idp_users: tuple[DemoUser, ...] = ()
    providers: tuple[ProviderConfig, ...] = ()  # default: one local provider in data_dir
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    # Change notifications: NATS JetStream fans changes out between replicas when set.
    nats_url: str = ""
    change_retention_days: PositiveInt = 30
    delivery_max_age_seconds: PositiveInt = 2 * 24 * 3600
    sse_keepalive_seconds: PositiveFloat = 15.0
    # How often workers look in the database for changes and deliveries nobody told them of.
    change_poll_seconds: PositiveFloat = 1.0
    federation: FederationSettings = FederationSettings()
    # A bearer token that Prometheus sends to read /metrics (besides an admin's); empty: none.
    metrics_token: str = ""
    # `json`: one JSON object a line (time, level, logger, message, request_id, fields).
    log_format: Literal["text", "json"] = "text"
    # Worker processes `serve` runs on this node, answering on one port (see README "Scaling out").
    workers: PositiveInt = 1

    @field_validator("idp_users", mode="before")
    @classmethod
    def _user_defaults(cls, users: Any) -> Any:
        """`display_name` defaults to the username, `email` to username@example.org."""
        if not isinstance(users, list | tuple):
            return users
        return [_with_user_defaults(user) if isinstance(user, dict) else user for user in users]

    @model_validator(mode="after")
    def _unique_provider_names(self) -> Settings:
        names = [provider.name for provider in self.providers]
        if len(set(names)) != len(names):
            raise ValueError("providers: names must be unique")
        return self

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


def _with_user_defaults(user: dict[str, Any]) -> dict[str, Any]:
    name = user.get("username")
    if not isinstance(name, str):  # only the username's error is worth reporting
        return {"display_name": "", "email": "", **user}
    return {"display_name": name, "email": f"{name}@example.org", **user}


# SPACEREG_<KEY> for these keys; README.md's Configuration table lists every variable.
_ENV_KEYS = (
    "data_dir",
    "host",
    "port",
    "base_url",
    "domain",
    "database_url",
    "audience",
    "admin_role",
    "roles_claim",
    "web_client_id",
    "web_client_secret",
    "default_project_quota",
    "default_personal_quota",
    "tls_certfile",
    "tls_keyfile",
    "nats_url",
    "change_retention_days",
    "delivery_max_age_seconds",
    "sse_keepalive_seconds",
    "change_poll_seconds",
    "metrics_token",
    "log_format",
    "workers",
)
ENVIRONMENT: dict[str, EnvVar] = {
    **{f"SPACEREG_{key.upper()}": EnvVar((key,)) for key in _ENV_KEYS},
    "SPACEREG_ADMIN_USERS": EnvVar(("admin_users",), comma_list),
    "SPACEREG_TRUSTED_ISSUERS": EnvVar(
        ("issuers",), lambda text: [{"url": url} for url in comma_list(text)]
    ),
    "SPACEREG_DNS_NAMESERVERS": EnvVar(("federation", "dns_nameservers"), comma_list),
    "SPACEREG_ALLOW_PRIVATE_NETWORKS": EnvVar(("federation", "allow_private_networks"), comma_list),
    "SPACEREG_ALLOW_HTTP": EnvVar(("federation", "allow_http")),
    "SPACEREG_CA_FILE": EnvVar(("federation", "ca_file")),
    "SPACEREG_REVEAL_UNKNOWN_USERS": EnvVar(("federation", "reveal_unknown_users")),
    "SPACEREG_OPEN_PEERING": EnvVar(("federation", "open_peering")),
    "SPACEREG_OPEN_SHARES": EnvVar(("federation", "open_shares")),
    "SPACEREG_PEER_REQUESTS_PER_SECOND": EnvVar(("federation", "peer_requests_per_second")),
    "SPACEREG_PEER_REQUEST_BURST": EnvVar(("federation", "peer_request_burst")),
}


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings from `config_file`, `env` (default: this process's) and `overrides`
    (None values are flags not given). Raises ConfigError naming each bad key."""
    env = os.environ if env is None else env
    settings = load(Settings, config_file, env, ENVIRONMENT, overrides or {}, ConfigError)
    return _with_derived_defaults(settings)


def _with_derived_defaults(settings: Settings) -> Settings:
    scheme = "https" if settings.tls_certfile else "http"
    base_url = (settings.base_url or f"{scheme}://{settings.host}:{settings.port}").rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"base_url: {base_url!r} is not an absolute http(s) URL")
    database_url = settings.database_url or (
        f"sqlite+aiosqlite:///{(settings.data_dir / 'spacereg.db').resolve()}"
    )
    local = {"name": "local", "driver": "local", "root": str(settings.data_dir / "spaces")}
    providers = settings.providers or (ProviderConfig.model_validate(local),)
    issuers = tuple(
        issuer if issuer.audience else issuer.model_copy(update={"audience": settings.audience})
        for issuer in settings.issuers
    )
    return settings.model_copy(
        update={
            "base_url": base_url,
            "domain": settings.domain or parts.netloc,
            "database_url": database_url,
            "providers": providers,
            "issuers": issuers,
        }
    )
