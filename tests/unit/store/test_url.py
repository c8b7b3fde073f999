"""Store URLs: every accepted form, and a clear refusal for each malformed one."""

from __future__ import annotations

from pathlib import Path

import pytest

from blox.store import errors, url


@pytest.mark.parametrize(
    ("text", "scheme", "path", "endpoints"),
    [
        ("memory://", "memory", None, []),
        ("sqlite:///var/lib/blox/blox.db", "sqlite", Path("/var/lib/blox/blox.db"), []),
        ("sqlite:data/blox.db", "sqlite", Path("data/blox.db"), []),
        ("etcd://127.0.0.1:2379", "etcd", None, [("127.0.0.1", 2379)]),
        ("etcd://a:1,b:2, c:3", "etcd", None, [("a", 1), ("b", 2), ("c", 3)]),
        ("etcd://[::1]:2379", "etcd", None, [("::1", 2379)]),
    ],
    ids=["memory", "sqlite absolute", "sqlite relative", "etcd one", "etcd cluster", "etcd ipv6"],
)
def test_accepted_forms(
    text: str, scheme: str, path: Path | None, endpoints: list[tuple[str, int]]
) -> None:
    parsed = url.parse(text)
    assert (parsed.scheme, parsed.path, parsed.endpoints) == (scheme, path, endpoints)


def test_sqlite_options() -> None:
    assert url.parse("sqlite:a.db").options == {"synchronous": "normal"}
    assert url.parse("sqlite:a.db?synchronous=FULL").options == {"synchronous": "full"}
    assert url.parse("etcd://h:1?timeout=2.5").options == {"timeout": "2.5"}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no scheme"),
        ("/var/lib/blox.db", "no scheme"),
        ("postgres://db", "unknown scheme 'postgres'"),
        ("memory://somewhere", "takes no path"),
        ("sqlite:", "names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite://host/file.db", "sqlite:///absolute/path"),
        ("sqlite:a.db?synchronous=sometimes", "synchronous must be one of"),
        ("sqlite:a.db?journal=off", "unknown option 'journal'"),
        ("etcd://", "names no etcd endpoint"),
        ("etcd://localhost", "is not host:port"),
        ("etcd://localhost:http", "port 'http'"),
        ("etcd://localhost:70000", "port '70000'"),
        ("etcd://a:1,:2", "is not host:port"),
        ("etcd://a:1?timeout=-1", "timeout must be a positive"),
        ("etcd://a:1?timeout", "malformed query"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(errors.InvalidStoreUrl, match=None) as refusal:
        url.parse(text)
    assert complaint in str(refusal.value)
