"""The `blox` command as a user runs it: a real subprocess, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def blox(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blox", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("bogus://x", "unknown scheme 'bogus'"),
        ("sqlite:", "names no file"),
        ("etcd://localhost", "is not host:port"),
        ("etcd://127.0.0.1:1", "127.0.0.1:1"),
    ],
    ids=["unknown scheme", "no file", "no port", "unreachable etcd"],
)
def test_a_bad_store_gives_one_line_on_stderr_and_status_1(url: str, complaint: str) -> None:
    result = blox("store", "status", "--store", url)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_corrupt_store_file_is_named_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "blox.db"
    path.write_bytes(b"not sqlite at all" * 64)
    result = blox("store", "list", "--store", f"sqlite:{path}")
    assert result.returncode == 1
    assert f"store file {path} is damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == b"not sqlite at all" * 64


def test_put_get_list_and_watch_round_trip_through_a_sqlite_file(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'blox.db'}"
    assert blox("store", "put", "a/1", "one", "--store", store).stdout.strip() == "2"
    assert blox("store", "put", "a/2", "two", "--store", store).returncode == 0
    got = json.loads(blox("store", "get", "a/1", "--store", store, "-o", "json").stdout)
    assert (got["value"], got["modRevision"], got["version"]) == ("one", 2, 1)
    listed = blox("store", "list", "a/", "--store", store, "-o", "json").stdout.splitlines()
    assert [json.loads(line)["key"] for line in listed] == ["a/1", "a/2"]
    watched = blox(
        "store", "watch", "a/", "--start-revision", "2", "--count", "2", "--store", store
    ).stdout.splitlines()
    assert [json.loads(line)["value"] for line in watched] == ["one", "two"]
    missing = blox("store", "get", "a/9", "--store", store)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_a_malformed_flag_is_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    result = blox("store", "compact", "zero", "--store", f"sqlite:{tmp_path / 'b.db'}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
