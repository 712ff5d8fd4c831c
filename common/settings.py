"""Settings of a program (the registry, a provider service), loaded the same way for each:
built-in defaults, then a TOML file, then environment variables, then values given in code
(command-line flags), each overriding the ones before. Read once at start-up, then passed down.

A program declares its settings as a `TopSettings` model with `Table`s inside: frozen, and
unknown keys are errors at every level. Where a string must not be coerced, fields use strict
types (`StrictBool`, `StrictInt`): `allow_http = "false"` in TOML is refused, not taken as true.
Environment variables are text, so their values are read leniently as their key's type first
("8080" -> 8080, "yes"/"no" -> True/False) unless the variable says how to read it.

pydantic-settings' own environment source is not used: the variables' names do not follow the
keys' nesting (`SPACEREG_ALLOW_HTTP` sets `federation.allow_http`), and lists in the environment
are comma-separated, which a list in the TOML file must not be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["EnvVar", "SettingsError", "Table", "TopSettings", "comma_list", "load"]


class SettingsError(Exception):
    """The settings cannot be used; the message names each offending key."""


class Table(BaseModel):
    """A table of settings (`[federation]`, an `[[issuers]]` entry): frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TopSettings(BaseSettings):
    """A program's settings: frozen, no unknown keys.

    Constructed directly, a model takes only the arguments given (it does not read the
    environment behind the caller's back); `load` adds the file and the environment."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, *_LOADING.get())


# The environment and the file of the `load` under way, below its arguments in precedence.
_LOADING: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("loading", default=())


@dataclass(frozen=True)
class EnvVar:
    """Where an environment variable's value goes, and how its text is read."""

    key: tuple[str, ...]  # ("federation", "allow_http") for federation.allow_http
    read: Callable[[str], Any] | None = None  # None: leniently, as the key's type


def comma_list(text: str) -> list[str]:
    """A list given in one environment variable: "a, b" -> ["a", "b"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


Model = TypeVar("Model", bound=TopSettings)


def load(
    model: type[Model],
    config_file: Path | None,
    env: Mapping[str, str],
    variables: Mapping[str, EnvVar],
    overrides: Mapping[str, Any],
    error: type[SettingsError] = SettingsError,
) -> Model:
    """`model` from `config_file` (TOML), the `variables` found in `env`, then `overrides`
    (None values are left out: a flag not given). Raises `error` naming each bad key."""
    given = {key: value for key, value in overrides.items() if value is not None}
    environment = _Environment(model, env, variables)
    loading = _LOADING.set((environment, _toml(model, config_file, error)))
    try:
        return model(**given)
    except ValidationError as exc:
        origins = {k: name for k, name in environment.origins.items() if k[0] not in given}
        raise error(describe(exc, origins)) from None
    finally:
        _LOADING.reset(loading)


def _toml(
    model: type[TopSettings], config_file: Path | None, error: type[SettingsError]
) -> PydanticBaseSettingsSource:
    if config_file is None:
        return InitSettingsSource(model, {})
    # pydantic-settings skips a missing file; a file named on the command line must exist.
    if not config_file.is_file():
        raise error(f"cannot read config file {config_file}: no such file")
    try:
        return TomlConfigSettingsSource(model, toml_file=config_file)
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise error(f"cannot read config file {config_file}: {exc}") from exc


class _Environment(PydanticBaseSettingsSource):
    """The `variables` set in `env`, each placed at its key."""

    def __init__(
        self, model: type[TopSettings], env: Mapping[str, str], variables: Mapping[str, EnvVar]
    ) -> None:
        super().__init__(model)
        self.values: dict[str, Any] = {}
        self.origins: dict[tuple[str, ...], str] = {}  # key -> the variable that set it
        for name, variable in variables.items():
            text = env.get(name)
            if text is None:
                continue
            value = variable.read(text) if variable.read else _lenient(model, variable.key, text)
            table = self.values
            for part in variable.key[:-1]:
                table = table.setdefault(part, {})
            table[variable.key[-1]] = value
            self.origins[variable.key] = name

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.values


def _lenient(model: type[BaseModel], key: tuple[str, ...], text: str) -> Any:
    """`text` as the type at `key`, read the lax way; unreadable text is left for the model's
    validation to refuse, with the key named."""
    annotation: Any = model
    for part in key:
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return text  # inside a free-form table: text stays text
        annotation = annotation.model_fields[part].annotation
    try:
        return TypeAdapter(annotation).validate_python(text)
    except ValidationError:
        return text


_EXPECTED = {
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "dataclass_type": "expected a table",
    "missing": "required",
}
_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument"}
_HIDDEN = ("secret", "password", "token")  # values of such keys are not repeated in messages


def describe(exc: ValidationError, origins: Mapping[tuple[str, ...], str] | None = None) -> str:
    """One line naming each bad key, like `federation.allow_http: expected true or false, got
    'false'`; `origins` names the environment variable a key came from."""
    unknown: list[str] = []
    problems: list[str] = []
    for error in exc.errors():
        key = _dotted(error["loc"])
        if error["type"] in _UNKNOWN:
            unknown.append(key)
            continue
        text = _EXPECTED.get(error["type"]) or _message(error)
        if _repeat_input(error, key):
            text += f", got {_short(error['input'])}"
        origin = _origin(error["loc"], origins or {})
        if origin:
            text += f" (from {origin})"
        problems.append(f"{key}: {text}" if key else text)
    if unknown:
        problems.insert(0, f"unknown configuration keys: {', '.join(unknown)}")
    return "; ".join(problems)


def _dotted(loc: tuple[int | str, ...]) -> str:
    """("issuers", 0, "url") -> "issuers[0].url"."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else part
    return key


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _repeat_input(error: ErrorDetails, key: str) -> bool:
    """Whether the message should repeat the bad value: not when it is the whole table, or
    already in the message, or secret."""
    if not key or error["type"] in {"missing", "value_error", "assertion_error"}:
        return False
    return not isinstance(error["input"], Mapping) and not any(word in key for word in _HIDDEN)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _origin(loc: tuple[int | str, ...], origins: Mapping[tuple[str, ...], str]) -> str | None:
    for key, name in origins.items():
        if loc[: len(key)] == key:
            return name
    return None
