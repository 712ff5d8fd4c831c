"""Settings: defaults, TOML, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.runtime.settings import ConfigError, load_settings


def test_defaults_work_on_a_fresh_machine():
    settings = load_settings(env={})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.data_dir == Path("var")
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("/var/spacereg.db")
    assert settings.embedded_idp
    assert settings.trusted_issuers()[0].url == "http://127.0.0.1:8080/idp"
    assert settings.providers[0].driver == "local"


def test_environment_overrides_the_file(tmp_path):
    config = tmp_path / "spacereg.toml"
    config.write_text(
        'port = 9000\nbase_url = "https://zurich.test"\nadmin_users = ["boss"]\n'
        '[[issuers]]\nurl = "https://idp.zurich.test/"\naudience = "zr"\n'
    )
    settings = load_settings(config, env={"SPACEREG_PORT": "9100", "SPACEREG_ADMIN_USERS": "a, b"})
    assert settings.port == 9100
    assert settings.base_url == "https://zurich.test"
    assert settings.domain == "zurich.test"
    assert settings.admin_users == ("a", "b")
    assert settings.issuers[0].url == "https://idp.zurich.test"
    assert settings.issuers[0].audience == "zr"
    assert not settings.embedded_idp


def test_trusted_issuers_from_the_environment():
    settings = load_settings(
        env={
            "SPACEREG_TRUSTED_ISSUERS": "https://a.test,https://b.test",
            "SPACEREG_AUDIENCE": "reg",
        }
    )
    assert [(i.url, i.audience) for i in settings.issuers] == [
        ("https://a.test", "reg"),
        ("https://b.test", "reg"),
    ]


def test_database_url_and_data_dir_from_the_environment(tmp_path):
    settings = load_settings(
        env={
            "SPACEREG_DATA_DIR": str(tmp_path),
            "SPACEREG_DATABASE_URL": "postgresql+asyncpg://u@h/db",
        }
    )
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.providers[0].options["root"] == str(tmp_path / "spaces")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('port = "x"', "port"),
        ("port = 70000", "port"),
        ('base_url = "ftp://x"', "base_url"),
        ("unknown = 1", "unknown configuration keys"),
        ("[[issuers]]\naudience = 'x'", "issuers"),
        ("[[providers]]\nname = 'x'", "providers"),
        ("[federation]\ncolour = 1", "federation"),
        ("port = ", "cannot read config file"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.toml", env={})


def test_providers_choose_drive_types_and_need_unique_names(tmp_path):
    config = tmp_path / "p.toml"
    config.write_text(
        '[[providers]]\nname = "a"\ndriver = "local"\nroot = "/a"\n'
        '[[providers]]\nname = "b"\ndriver = "local"\nroot = "/b"\n'
        'drive_types = ["project"]\n'
    )
    settings = load_settings(config, env={})
    assert settings.provider_for_type() == {"project": "b"}
    assert settings.providers[1].options == {"root": "/b"}
    config.write_text(
        '[[providers]]\nname = "a"\ndriver = "local"\n[[providers]]\nname = "a"\ndriver = "local"\n'
    )
    with pytest.raises(ConfigError, match="unique"):
        load_settings(config, env={})
