"""The container artifacts: hadolint finds nothing in the Dockerfile and the rules that matter
hold (multi-stage, pinned base, non-root, health check); the compose file is valid against the
compose specification's JSON schema (as vendored by check-jsonschema; no Docker daemon here)
and keeps v0.3's services, ports and flags; and what `blox` imports at run time is what the
image installs, its runtime dependencies and nothing from the dev extras.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.deploy.artifacts import DEPLOY, REPO, load_template

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = DEPLOY / "docker" / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "docker" / "compose.yaml"
HADOLINT = Path(sys.executable).parent / "hadolint"
VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(kept))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_flags_a_bad_dockerfile_so_the_lint_test_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nADD https://example.com/x.tgz /x\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3002"} <= codes


def test_the_image_is_built_in_two_stages_from_a_pinned_slim_base() -> None:
    steps = instructions(DOCKERFILE.read_text())
    bases = [arguments.split() for keyword, arguments in steps if keyword == "FROM"]
    assert bases == [["python:3.11-slim-bookworm", "AS", "build"], ["python:3.11-slim-bookworm"]]
    assert ("RUN", "pip wheel --no-cache-dir --no-deps --wheel-dir /dist .") in steps
    assert ("COPY", "--from=build /dist/ /tmp/dist/") in steps
    assert not [arguments for keyword, arguments in steps if keyword == "ADD"]
    assert "latest" not in DOCKERFILE.read_text()


def test_the_image_runs_blox_as_a_numeric_non_root_user() -> None:
    steps = instructions(DOCKERFILE.read_text())
    keywords = [keyword for keyword, _ in steps]
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    assert users == ["10001:10001"]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert ("ENTRYPOINT", '["blox"]') in steps


def test_the_health_check_uses_python_against_healthz_and_no_secret_is_baked_in() -> None:
    steps = dict(instructions(DOCKERFILE.read_text()))
    assert "python" in steps["HEALTHCHECK"] and "urllib.request.urlopen" in steps["HEALTHCHECK"]
    assert "BLOX_HEALTHCHECK_URL=http://127.0.0.1:3000/healthz" in steps["ENV"]
    assert "org.opencontainers.image.title" in steps["LABEL"]
    assert not re.search(r"(?i)(secret|password|token|access_key)", steps["ENV"] + steps["LABEL"])


def test_the_build_context_sends_only_what_the_dockerfile_copies() -> None:
    patterns = [line for line in DOCKERIGNORE.read_text().splitlines() if not line.startswith("#")]
    assert patterns[0] == "*"  # everything out, then only these back in
    kept = {line.removeprefix("!").rstrip("/") for line in patterns if line.startswith("!")}
    copied = {
        source.removeprefix("./").rstrip("/")
        for keyword, arguments in instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    }
    assert copied == kept == {"pyproject.toml", "README.md", "src"}


def interpolated(text: str, environment: dict[str, str]) -> Any:
    """The compose file as compose reads it: ${VAR}, ${VAR:-default}, ${VAR:?error} filled."""

    def fill(match: re.Match[str]) -> str:
        name, kind, default = match[1], match[2], match[3]
        if name in environment:
            return environment[name]
        if kind == "?":
            raise KeyError(f"{name}: {default}")
        return default or ""

    return yaml.safe_load(VARIABLE.sub(fill, text))


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = interpolated(COMPOSE.read_text(), {"AWS_REGION": "us-west-2"})
    return loaded


def test_the_compose_file_is_valid_against_the_compose_specification(
    compose_schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    jsonschema.Draft202012Validator(compose_schema).validate(compose)
    jsonschema.Draft202012Validator(compose_schema).validate(yaml.safe_load(COMPOSE.read_text()))


def test_the_schema_rejects_a_broken_compose_file_so_the_check_can_fail(
    compose_schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["css"]["depends_on"]["etcd"]["condition"] = "healthy"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(compose_schema).validate(broken)


def test_the_region_must_be_given_as_in_v0_3() -> None:
    with pytest.raises(KeyError, match="AWS_REGION"):
        interpolated(COMPOSE.read_text(), {})


def test_the_services_keep_v0_3s_shape_ports_and_flags(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"etcd", "css", "scheduler"}
    assert services["css"]["command"] == [
        *("css", "--bind", "0.0.0.0:3000", "--etcd-endpoint", "etcd:2379"),
        *("--queue", "blox_queue", "--dead-letter-queue", "blox_queue_dlq"),
    ]
    assert services["scheduler"]["command"] == [
        *("scheduler", "--bind", "0.0.0.0:2000", "--css-endpoint", "css:3000"),
        *("--etcd-endpoint", "etcd:2379"),
    ]
    assert services["css"]["ports"] == ["127.0.0.1:3000:3000"]
    assert services["scheduler"]["ports"] == ["127.0.0.1:2000:2000"]
    assert "ports" not in services["etcd"]
    assert "~/blox-state:/var/lib/etcd" in services["etcd"]["volumes"]


def test_aws_settings_come_from_the_environment_and_a_read_only_aws_folder(
    compose: dict[str, Any],
) -> None:
    for name in ("css", "scheduler"):
        service = compose["services"][name]
        assert service["environment"]["AWS_REGION"] == "us-west-2"
        assert service["environment"]["AWS_PROFILE"] == "default"
        assert "~/.aws:/home/blox/.aws:ro" in service["volumes"]
        assert service["user"] == "10001:10001"


def test_each_dependency_waits_for_a_health_check_that_probes_the_bound_port(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for service in services.values():
        assert service["healthcheck"]["test"][0] == "CMD"
        for needed, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}
            assert "healthcheck" in services[needed]
    for name, port in (("css", 3000), ("scheduler", 2000)):
        assert f"http://127.0.0.1:{port}/healthz" in services[name]["healthcheck"]["test"][-1]


def test_compose_and_the_aws_stack_run_the_same_pinned_etcd_3_5(compose: dict[str, Any]) -> None:
    image = compose["services"]["etcd"]["image"]
    assert re.fullmatch(r"quay\.io/coreos/etcd:v3\.5\.\d+", image)
    aws = load_template(DEPLOY / "cloudformation" / "blox-aws.yaml")
    assert aws["Parameters"]["EtcdImage"]["Default"] == image
    etcd = aws["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert etcd["Command"] == compose["services"]["etcd"]["command"]


def runtime_distributions() -> set[str]:
    """The project's [project].dependencies and everything they require, extras aside."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for extra in requirement.extras:
            pending.extend(_requires(name, extra))
        pending.extend(_requires(name, ""))
    return seen


def _requires(name: str, extra: str) -> list[Requirement]:
    """What distribution `name` requires: its base requirements, or those of one extra."""
    found = []
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        of_an_extra = marker is not None and "extra" in str(marker)
        if of_an_extra != bool(extra):
            continue
        if marker is None or marker.evaluate({"extra": extra}):
            found.append(requirement)
    return found


# Runs `blox <command> --help` in a child Python that refuses to import any installed
# distribution outside the runtime closure, as the image (which has nothing else) would.
DENY_OTHERS = """
import importlib.abc, importlib.metadata, json, sys
allowed = set(json.loads(sys.argv[1]))
owners = importlib.metadata.packages_distributions()
def canonical(name):
    return name.lower().replace("_", "-").replace(".", "-")
class DenyDevOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        dists = {canonical(d) for d in owners.get(top, [])}
        if top != "blox" and dists and not dists & allowed:
            raise ModuleNotFoundError(f"{name} (from {sorted(dists)}) is not a runtime dependency")
        return None
sys.meta_path.insert(0, DenyDevOnly())
sys.argv = ["blox", *sys.argv[2:], "--help"]
from blox.cli.main import main
main()
"""


@pytest.mark.parametrize("command", [["css"], ["scheduler"], ["sim", "up"]], ids=" ".join)
def test_the_image_can_run_each_service_with_its_runtime_dependencies_only(
    command: list[str],
) -> None:
    allowed = json.dumps(sorted(runtime_distributions()))
    done = subprocess.run(
        [sys.executable, "-c", DENY_OTHERS, allowed, *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage: blox " + " ".join(command) in done.stdout
