"""Where the client commands find the servers: flags, environment variables, a config file.

Each setting comes from the first of: its flag, its environment variable, the profile in the
config file, the default (the endpoints `blox up` serves). The config file is TOML, at
$BLOX_CONFIG, else $XDG_CONFIG_HOME/blox/config.toml (~/.config/blox/config.toml):

    profile = "local"                  # the profile used when neither --profile nor BLOX_PROFILE
    [profiles.local]
    css_endpoint = "http://127.0.0.1:3000"
    scheduler_endpoint = "http://127.0.0.1:2000"
    output = "table"                   # table, json or yaml
    [profiles.aws]
    endpoint = "https://abc.execute-api.eu-west-1.amazonaws.com/prod"  # both APIs behind one URL
    sigv4_region = "eu-west-1"         # sign requests for API Gateway with IAM auth
    aws_profile = "prod"               # the AWS profile whose credentials sign (else AWS's chain)

    setting             flag                  environment               profile key
    CSS                 --css-endpoint        BLOX_CSS_ENDPOINT         css_endpoint, endpoint
    scheduler           --scheduler-endpoint  BLOX_SCHEDULER_ENDPOINT   scheduler_endpoint, endpoint
    output              --output / -o         BLOX_OUTPUT               output
    SigV4 region        --sigv4-region        BLOX_SIGV4_REGION         sigv4_region
    AWS profile         (AWS_PROFILE, read by botocore)                 aws_profile
    profile             --profile             BLOX_PROFILE              (top-level) profile

Without a chosen profile, `[profiles.default]` applies when the file has one. Keys may be
spelled with `-` or `_`. Anything unusable (TOML errors, unknown keys or profiles, values of
the wrong type, an endpoint that is not a URL) is a `UsageInvalid` naming the file and key
(exit 2). `resolve` is pure; `load` reads the file. Callers: `cli/session.py`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from blox.cli.exits import UsageInvalid

__all__ = [
    "DEFAULT_CSS_ENDPOINT",
    "DEFAULT_SCHEDULER_ENDPOINT",
    "OUTPUTS",
    "PROFILE_KEYS",
    "Config",
    "Flags",
    "Output",
    "Settings",
    "config_path",
    "endpoint_url",
    "load",
    "parse_config",
    "read_config",
    "resolve",
]

DEFAULT_CSS_ENDPOINT = "http://127.0.0.1:3000"
DEFAULT_SCHEDULER_ENDPOINT = "http://127.0.0.1:2000"
Output = Literal["table", "json", "yaml"]
OUTPUTS: tuple[Output, ...] = ("table", "json", "yaml")
PROFILE_KEYS = (
    "endpoint",
    "css_endpoint",
    "scheduler_endpoint",
    "output",
    "sigv4_region",
    "aws_profile",
)
_TOP_KEYS = ("profile", "profiles")


@dataclass(frozen=True, slots=True)
class Flags:
    """What the command line said (None: not given)."""

    css_endpoint: str | None = None
    scheduler_endpoint: str | None = None
    profile: str | None = None
    output: str | None = None
    sigv4_region: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A parsed config file: its profiles (name → key → value) and the default profile."""

    path: Path | None = None
    profiles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the servers are and how to talk to them, once every source is resolved."""

    css_endpoint: str = DEFAULT_CSS_ENDPOINT
    scheduler_endpoint: str = DEFAULT_SCHEDULER_ENDPOINT
    output: Output = "table"
    sigv4_region: str | None = None
    profile: str | None = None
    aws_profile: str | None = None  # signs with this AWS profile's credentials (SigV4 only)


def config_path(env: Mapping[str, str], home: Path) -> tuple[Path, bool]:
    """The config file, and whether it was named explicitly (then it must exist)."""
    if env.get("BLOX_CONFIG"):
        return Path(env["BLOX_CONFIG"]).expanduser(), True
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return base / "blox" / "config.toml", False


def parse_config(text: str, path: Path) -> Config:
    """The profiles of a config file's `text`; UsageInvalid names `path` and the bad key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageInvalid(f"{path}: not valid TOML: {exc}") from exc
    for key in document:
        if key not in _TOP_KEYS:
            raise UsageInvalid(f"{path}: unknown key {key!r} (known: {', '.join(_TOP_KEYS)})")
    default = document.get("profile")
    if default is not None and not isinstance(default, str):
        raise UsageInvalid(f"{path}: key 'profile' must be a string (a profile's name)")
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise UsageInvalid(f"{path}: key 'profiles' must be a table of [profiles.NAME] tables")
    profiles = {name: _profile(path, name, table) for name, table in tables.items()}
    return Config(path=path, profiles=profiles, profile=default)


def _profile(path: Path, name: str, table: object) -> dict[str, str]:
    where = f"profiles.{name}"
    if not isinstance(table, dict):
        raise UsageInvalid(f"{path}: key {where!r} must be a table ([{where}])")
    profile: dict[str, str] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in PROFILE_KEYS:
            raise UsageInvalid(
                f"{path}: unknown key '{where}.{raw_key}' (known: {', '.join(PROFILE_KEYS)})"
            )
        if not isinstance(value, str):
            raise UsageInvalid(f"{path}: key '{where}.{raw_key}' must be a string")
        profile[key] = value
    return profile


def read_config(path: Path, *, explicit: bool) -> Config:
    """The config file at `path`; an absent file is an empty config unless `explicit`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if explicit:
            raise UsageInvalid(f"{path}: no such config file (named by BLOX_CONFIG)") from exc
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageInvalid(f"{path}: cannot read the config file: {exc}") from exc
    return parse_config(text, path)


def resolve(flags: Flags, env: Mapping[str, str], config: Config) -> Settings:
    """The settings from `flags`, then `env`, then the chosen profile of `config`, then defaults."""
    name, profile = _chosen_profile(flags, env, config)
    where = f"{config.path}: profiles.{name}" if name is not None else ""

    def pick(flag: str | None, variable: str, *keys: str) -> tuple[str, str] | None:
        if flag is not None:
            return flag, f"--{variable.removeprefix('BLOX_').lower().replace('_', '-')}"
        if env.get(variable):
            return env[variable], variable
        for key in keys:
            if key in profile:
                return profile[key], f"{where}.{key}"
        return None

    css = pick(flags.css_endpoint, "BLOX_CSS_ENDPOINT", "css_endpoint", "endpoint")
    scheduler = pick(
        flags.scheduler_endpoint, "BLOX_SCHEDULER_ENDPOINT", "scheduler_endpoint", "endpoint"
    )
    output = pick(flags.output, "BLOX_OUTPUT", "output")
    region = pick(flags.sigv4_region, "BLOX_SIGV4_REGION", "sigv4_region")
    return Settings(
        css_endpoint=endpoint_url(*css) if css else DEFAULT_CSS_ENDPOINT,
        scheduler_endpoint=endpoint_url(*scheduler) if scheduler else DEFAULT_SCHEDULER_ENDPOINT,
        output=_output(*output) if output else "table",
        sigv4_region=_region(*region) if region else None,
        profile=name,
        aws_profile=profile.get("aws_profile") or None,
    )


def _chosen_profile(
    flags: Flags, env: Mapping[str, str], config: Config
) -> tuple[str | None, Mapping[str, str]]:
    """The profile's name and keys: --profile, BLOX_PROFILE, the file's `profile`, `default`."""
    for name, source in (
        (flags.profile, "--profile"),
        (env.get("BLOX_PROFILE") or None, "BLOX_PROFILE"),
        (config.profile, f"{config.path}: key 'profile'"),
    ):
        if name is None:
            continue
        if name not in config.profiles:
            known = ", ".join(sorted(config.profiles)) or "none"
            file = config.path or "the config file (there is none)"
            raise UsageInvalid(f"{source}: no profile {name!r} in {file} (profiles there: {known})")
        return name, config.profiles[name]
    if "default" in config.profiles:
        return "default", config.profiles["default"]
    return None, {}


def endpoint_url(value: str, source: str) -> str:
    """An endpoint as a URL: `host:port` (v0.3's form) becomes `http://host:port`."""
    text = value.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise UsageInvalid(f"{source}: {value!r} is not an endpoint URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise UsageInvalid(
            f"{source}: {value!r} is not an endpoint: use http(s)://host[:port][/path] or host:port"
        )
    return text.rstrip("/")


def _output(value: str, source: str) -> Output:
    if value not in OUTPUTS:
        raise UsageInvalid(f"{source}: output {value!r} is not one of {', '.join(OUTPUTS)}")
    return value  # narrowed to Output by the membership test


def _region(value: str, source: str) -> str:
    if not value or not all(c.isalnum() or c == "-" for c in value):
        raise UsageInvalid(f"{source}: {value!r} is not an AWS region (e.g. eu-west-1)")
    return value


def load(flags: Flags, env: Mapping[str, str] | None = None, home: Path | None = None) -> Settings:
    """The settings for `flags`, reading the environment and the config file it points to."""
    env = os.environ if env is None else env
    path, explicit = config_path(env, Path.home() if home is None else home)
    return resolve(flags, env, read_config(path, explicit=explicit))
