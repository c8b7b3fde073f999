"""Where the client commands find the servers: flag > env > profile > default, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from blox.cli import config
from blox.cli.config import Config, Flags, Settings
from blox.cli.exits import USAGE, UsageInvalid

FILE = Path("/etc/blox/config.toml")
TOML = """
profile = "lab"

[profiles.lab]
css_endpoint = "http://lab-css:3000"
scheduler_endpoint = "lab-scheduler:2000"
output = "yaml"

[profiles.aws]
endpoint = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/"
sigv4-region = "eu-west-1"
aws_profile = "prod"

[profiles.default]
output = "json"
"""


def parsed(text: str = TOML) -> Config:
    return config.parse_config(text, FILE)


def test_without_flags_env_or_file_the_endpoints_are_those_blox_up_serves() -> None:
    assert config.resolve(Flags(), {}, Config()) == Settings(
        css_endpoint="http://127.0.0.1:3000",
        scheduler_endpoint="http://127.0.0.1:2000",
        output="table",
        sigv4_region=None,
        profile=None,
    )


def test_the_files_default_profile_applies_and_host_port_becomes_a_url() -> None:
    settings = config.resolve(Flags(), {}, parsed())
    assert settings.profile == "lab"
    assert settings.css_endpoint == "http://lab-css:3000"
    assert settings.scheduler_endpoint == "http://lab-scheduler:2000"
    assert settings.output == "yaml"


def test_a_profile_with_one_endpoint_serves_both_apis_and_signs_for_its_region() -> None:
    settings = config.resolve(Flags(profile="aws"), {}, parsed())
    url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    assert (settings.css_endpoint, settings.scheduler_endpoint) == (url, url)
    assert (settings.sigv4_region, settings.aws_profile) == ("eu-west-1", "prod")
    assert settings.output == "table"


def test_an_environment_variable_beats_the_profile_and_a_flag_beats_both() -> None:
    env = {
        "BLOX_PROFILE": "aws",
        "BLOX_CSS_ENDPOINT": "http://env-css:1",
        "BLOX_OUTPUT": "json",
        "BLOX_SIGV4_REGION": "us-west-2",
    }
    by_env = config.resolve(Flags(), env, parsed())
    assert by_env.profile == "aws"
    assert by_env.css_endpoint == "http://env-css:1"
    assert by_env.scheduler_endpoint.startswith("https://abc.execute-api")  # from the profile
    assert (by_env.output, by_env.sigv4_region) == ("json", "us-west-2")
    by_flag = config.resolve(
        Flags(css_endpoint="127.0.0.1:9", output="yaml", profile="lab", sigv4_region="ap-south-1"),
        env,
        parsed(),
    )
    assert by_flag.profile == "lab"
    assert by_flag.css_endpoint == "http://127.0.0.1:9"
    assert by_flag.scheduler_endpoint == "http://lab-scheduler:2000"
    assert (by_flag.output, by_flag.sigv4_region) == ("yaml", "ap-south-1")


def test_the_profile_named_default_applies_when_none_is_chosen() -> None:
    text = TOML.replace('profile = "lab"', "")
    assert config.resolve(Flags(), {}, parsed(text)).profile == "default"
    assert config.resolve(Flags(), {}, parsed(text)).output == "json"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[profiles.lab\nendpoint = 1", ["config.toml", "not valid TOML", "line 1"]),
        ("colour = 'red'", ["config.toml", "unknown key 'colour'"]),
        ("[profiles.lab]\nendpont = 'http://x'", ["unknown key 'profiles.lab.endpont'"]),
        ("[profiles.lab]\noutput = 3", ["key 'profiles.lab.output' must be a string"]),
        ("profiles = 3", ["key 'profiles' must be a table"]),
        ("profile = 'nope'\n[profiles.lab]", ["key 'profile'", "no profile 'nope'", "lab"]),
        ("[profiles.lab]\noutput = 'xml'", ["profiles.lab.output", "'xml'", "table, json, yaml"]),
        ("[profiles.lab]\nendpoint = 'ftp://x'", ["profiles.lab.endpoint", "not an endpoint"]),
        ("[profiles.lab]\nendpoint = 'h:port'", ["profiles.lab.endpoint", "not an endpoint URL"]),
    ],
    ids=[
        "malformed TOML",
        "unknown top-level key",
        "misspelt profile key",
        "value of the wrong type",
        "profiles not a table",
        "default profile missing",
        "unknown output",
        "endpoint of another scheme",
        "port not a number",
    ],
)
def test_a_bad_config_file_is_one_usage_error_naming_the_file_and_key(
    text: str, names: list[str]
) -> None:
    with pytest.raises(UsageInvalid) as caught:
        config.resolve(Flags(profile="lab" if "'nope'" not in text else None), {}, parsed(text))
    message = str(caught.value)
    assert str(FILE) in message
    for name in names:
        assert name in message
    assert caught.value.exit_code == USAGE


def test_a_bad_flag_or_variable_names_its_source() -> None:
    with pytest.raises(UsageInvalid, match=r"^--output: output 'xml'"):
        config.resolve(Flags(output="xml"), {}, Config())
    with pytest.raises(UsageInvalid, match=r"^BLOX_SCHEDULER_ENDPOINT: 'x y:z'"):
        config.resolve(Flags(), {"BLOX_SCHEDULER_ENDPOINT": "x y:z"}, Config())
    with pytest.raises(UsageInvalid, match=r"^--profile: no profile 'prod'.*there is none"):
        config.resolve(Flags(profile="prod"), {}, Config())


def test_the_file_is_blox_config_else_under_xdg_config_home_else_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert config.config_path({"BLOX_CONFIG": "/x.toml"}, home) == (Path("/x.toml"), True)
    assert config.config_path({"XDG_CONFIG_HOME": "/xdg"}, home) == (
        Path("/xdg/blox/config.toml"),
        False,
    )
    assert config.config_path({}, home) == (home / ".config/blox/config.toml", False)


def test_load_reads_the_file_and_a_missing_one_only_matters_when_named(tmp_path: Path) -> None:
    file = tmp_path / "blox" / "config.toml"
    assert config.load(Flags(), {"XDG_CONFIG_HOME": str(tmp_path)}, tmp_path) == Settings()
    file.parent.mkdir()
    file.write_text(TOML)
    loaded = config.load(Flags(), {"XDG_CONFIG_HOME": str(tmp_path)}, tmp_path)
    assert loaded.css_endpoint == "http://lab-css:3000"
    with pytest.raises(UsageInvalid, match="no such config file"):
        config.load(Flags(), {"BLOX_CONFIG": str(tmp_path / "absent.toml")}, tmp_path)
    file.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageInvalid, match="cannot read the config file"):
        config.load(Flags(), {"BLOX_CONFIG": str(file)}, tmp_path)
