"""Settings: defaults, TOML, environment overrides, and clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registry.runtime.settings import ENVIRONMENT, ConfigError, load_settings
from tests.processes import SPACEREG, clean_env


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


# ------------------------------------------------------------------ wrong types


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a bool given as a string is not coerced (any non-empty string used to mean true)
        ('[federation]\nallow_http = "false"', "federation.allow_http: expected true or false"),
        ("[federation]\nreveal_unknown_users = 1", "federation.reveal_unknown_users"),
        # a list given as a string (it used to become a list of single characters)
        (
            '[federation]\nallow_private_networks = "10.0.0.0/8"',
            "federation.allow_private_networks: expected a list",
        ),
        ('admin_users = "boss"', "admin_users: expected a list"),
        ('[[providers]]\nname = "a"\ndriver = "local"\ndrive_types = "project"', "drive_types"),
        # not an IP network
        (
            '[federation]\nallow_private_networks = ["10.0.0.0/8", "10.0.0.0/33"]',
            r"federation.allow_private_networks\[1\]: '10.0.0.0/33' is not an IP network",
        ),
        # unknown keys inside tables
        (
            '[[issuers]]\nurl = "https://i.test"\naud = "x"',
            r"unknown configuration keys: issuers\[0\].aud",
        ),
        (
            '[[idp_users]]\nusername = "a"\npassword = "b"\nmail = "a@b"',
            r"unknown configuration keys: idp_users\[0\].mail",
        ),
        # wrong ints and numbers
        ('port = "8080"', "port: expected an integer"),
        ("port = 8080.5", "port: expected an integer"),
        ("default_project_quota = true", "default_project_quota: expected an integer"),
        ("default_personal_quota = -1", "default_personal_quota"),
        ("change_retention_days = 0", "change_retention_days: input should be greater than 0"),
        ('sse_keepalive_seconds = "15"', "sse_keepalive_seconds: expected a number"),
        # strings are not made of numbers
        ("host = 127", "host: expected a string"),
        ("[federation]\nca_file = 1", "federation.ca_file: expected a string"),
    ],
)
def test_wrong_types_are_refused_naming_the_key(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_every_bad_key_is_named_at_once(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('port = "x"\ncolour = 1\n[federation]\nallow_http = "no"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    message = str(caught.value)
    assert "unknown configuration keys: colour" in message
    assert "port: expected an integer, got 'x'" in message
    assert "federation.allow_http: expected true or false, got 'no'" in message


def test_passwords_are_not_repeated_in_errors(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[idp_users]]\nusername = "a"\npassword = 123456\n')
    with pytest.raises(ConfigError, match=r"idp_users\[0\].password: expected a string") as caught:
        load_settings(config, env={})
    assert "123456" not in str(caught.value)


def test_toml_values_of_the_right_type_are_taken(tmp_path):
    config = tmp_path / "good.toml"
    config.write_text(
        'domain = "example.org"\nsse_keepalive_seconds = 2\n'
        "[federation]\nallow_http = true\nreveal_unknown_users = true\n"
        'allow_private_networks = ["10.0.0.0/8", "fd00::/8"]\n'
        '[[idp_users]]\nusername = "ada"\npassword = "engine"\n'
        '[[providers]]\nname = "disk"\ndriver = "local"\nroot = "/srv"\ndav_threads = 4\n'
    )
    settings = load_settings(config, env={})
    assert settings.domain == "example.org"
    assert settings.sse_keepalive_seconds == 2.0
    assert settings.federation.allow_http and settings.federation.reveal_unknown_users
    assert settings.federation.allow_private_networks == ("10.0.0.0/8", "fd00::/8")
    assert settings.idp_users[0].display_name == "ada"
    assert settings.idp_users[0].email == "ada@example.org"
    assert settings.providers[0].options == {"root": "/srv", "dav_threads": 4}


# ------------------------------------------------------------------ the environment


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("yes", True), ("no", False)],
)
def test_environment_booleans(text, expected):
    settings = load_settings(env={"SPACEREG_ALLOW_HTTP": text})
    assert settings.federation.allow_http is expected


def test_environment_values_of_the_wrong_type_name_the_key_and_variable():
    with pytest.raises(ConfigError, match=r"federation.allow_http: .*\(from SPACEREG_ALLOW_HTTP\)"):
        load_settings(env={"SPACEREG_ALLOW_HTTP": "sometimes"})
    with pytest.raises(ConfigError, match=r"port: expected an integer.*\(from SPACEREG_PORT\)"):
        load_settings(env={"SPACEREG_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"allow_private_networks\[1\]: 'nonsense' is not"):
        load_settings(env={"SPACEREG_ALLOW_PRIVATE_NETWORKS": "10.0.0.0/8,nonsense"})


def test_environment_lists_are_comma_separated():
    settings = load_settings(
        env={
            "SPACEREG_ADMIN_USERS": "a, b",
            "SPACEREG_TRUSTED_ISSUERS": "https://a.test/, https://b.test",
            "SPACEREG_DNS_NAMESERVERS": "127.0.0.1:5353,[::1]:53",
            "SPACEREG_ALLOW_PRIVATE_NETWORKS": "10.0.0.0/8, 127.0.0.0/8",
        }
    )
    assert settings.admin_users == ("a", "b")
    assert [issuer.url for issuer in settings.issuers] == ["https://a.test", "https://b.test"]
    assert settings.federation.dns_nameservers == ("127.0.0.1:5353", "[::1]:53")
    assert settings.federation.allow_private_networks == ("10.0.0.0/8", "127.0.0.0/8")


def test_environment_and_file_merge_within_a_table(tmp_path):
    config = tmp_path / "spacereg.toml"
    config.write_text('[federation]\ndns_nameservers = ["127.0.0.1:5353"]\nallow_http = false\n')
    settings = load_settings(config, env={"SPACEREG_ALLOW_HTTP": "yes"})
    assert settings.federation.allow_http
    assert settings.federation.dns_nameservers == ("127.0.0.1:5353",)


def test_flags_override_the_environment(tmp_path):
    settings = load_settings(
        env={"SPACEREG_PORT": "9100", "SPACEREG_HOST": "0.0.0.0"},
        overrides={"port": 9200, "host": None, "data_dir": tmp_path},
    )
    assert (settings.host, settings.port, settings.data_dir) == ("0.0.0.0", 9200, tmp_path)


def test_every_environment_variable_is_documented():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert [name for name in ENVIRONMENT if f"`{name}`" not in readme] == []


# ------------------------------------------------------------------ the command


def test_serve_exits_2_naming_the_bad_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[federation]\nallow_http = "false"\n')
    result = subprocess.run(
        [*SPACEREG, "--config", str(config), "--data-dir", str(tmp_path / "data"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 2, result.stderr
    assert "spacereg: configuration error: federation.allow_http" in result.stderr
    assert not (tmp_path / "data").exists()
