"""The provider service's settings (`spacereg provider serve`): loaded like the registry's
(see test_config.py), wrong types and unknown keys refused naming the key."""

from __future__ import annotations

import pytest

from storage.service_config import ServiceConfigError, load_service_config

SECRET = "s" * 40


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('port = "9200"', "port: expected an integer"),
        ("min_lease_seconds = 1.5", "min_lease_seconds: expected an integer"),
        ("name = 7", "name: expected a string"),
        ('options = "root=/srv"', "options: expected a table"),
        ("[tls]\ncertfile = 'x'", "unknown configuration keys: tls"),
        ("min_lease_seconds = 10\nmax_lease_seconds = 5", "min_lease_seconds"),
        ('public_url = "disk1.test"', "public_url"),
    ],
)
def test_provider_service_refuses_wrong_types_naming_the_key(tmp_path, text, message):
    config = tmp_path / "provider.toml"
    config.write_text(f'secret = "{SECRET}"\n{text}\n')
    with pytest.raises(ServiceConfigError, match=message):
        load_service_config(config, env={})


def test_provider_service_secret_is_not_repeated_in_errors():
    with pytest.raises(ServiceConfigError, match="secret: string should have at least") as caught:
        load_service_config(env={"SPACEREG_PROVIDER_SECRET": "tiny-secret"})
    assert "tiny-secret" not in str(caught.value)


def test_provider_service_environment_and_options(tmp_path):
    config = tmp_path / "provider.toml"
    config.write_text(f'secret = "{SECRET}"\n[options]\nroot = "/srv"\ndav_threads = 4\n')
    settings = load_service_config(
        config,
        env={"SPACEREG_PROVIDER_MAX_LEASE_SECONDS": "600", "SPACEREG_PROVIDER_OPTION_ROOT": "/x"},
    )
    assert settings.max_lease_seconds == 600
    assert settings.options == {"root": "/x", "dav_threads": 4}
    with pytest.raises(ServiceConfigError, match=r"\(from SPACEREG_PROVIDER_PORT\)"):
        load_service_config(config, env={"SPACEREG_PROVIDER_PORT": "ninety"})
