"""Store URLs: which backend, where, and with what options. Pure parsing, no I/O.

memory://                              in this process only; gone when it ends
sqlite:///abs/path/blox.db             the embedded default (WAL); `?synchronous=full` for fsync
sqlite:relative/path/blox.db           a path relative to the working folder
etcd://host:port[,host:port...]        a real etcd v3 server or cluster; `?timeout=5`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from blox.store import errors

FORMS = "memory://, sqlite:///path/to/blox.db or etcd://host:port[,host:port...]"
SYNCHRONOUS_MODES = ("normal", "full")


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL."""

    scheme: str
    path: Path | None = None
    endpoints: list[tuple[str, int]] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


def parse(url: str) -> StoreUrl:
    """Parse a store URL, or raise InvalidStoreUrl saying what is wrong and what is accepted."""
    scheme, sep, rest = url.partition(":")
    if not sep or not scheme:
        raise errors.InvalidStoreUrl(f"store URL {url!r} has no scheme; use {FORMS}")
    rest, _, query = rest.partition("?")
    options = _options(url, query)
    if scheme == "memory":
        if rest not in ("", "//"):
            raise errors.InvalidStoreUrl(f"store URL {url!r}: memory:// takes no path")
        return StoreUrl("memory", options=options)
    if scheme == "sqlite":
        return _sqlite(url, rest, options)
    if scheme == "etcd":
        return _etcd(url, rest, options)
    raise errors.InvalidStoreUrl(f"store URL {url!r} has unknown scheme {scheme!r}; use {FORMS}")


def _options(url: str, query: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise errors.InvalidStoreUrl(f"store URL {url!r} has a malformed query: {exc}") from exc


def _sqlite(url: str, rest: str, options: dict[str, str]) -> StoreUrl:
    if rest.startswith("///"):
        path = Path(rest[2:])
    elif rest.startswith("//"):
        raise errors.InvalidStoreUrl(
            f"store URL {url!r}: write sqlite:///absolute/path or sqlite:relative/path"
        )
    else:
        path = Path(rest)
    if not rest.strip("/") or path.name in ("", ".", ".."):
        raise errors.InvalidStoreUrl(f"store URL {url!r} names no file")
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise errors.InvalidStoreUrl(f"store URL {url!r}: unknown option {sorted(unknown)[0]!r}")
    mode = options.get("synchronous", "normal").lower()
    if mode not in SYNCHRONOUS_MODES:
        raise errors.InvalidStoreUrl(
            f"store URL {url!r}: synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}"
        )
    return StoreUrl("sqlite", path=path, options={"synchronous": mode})


def _etcd(url: str, rest: str, options: dict[str, str]) -> StoreUrl:
    if not rest.startswith("//") or not rest[2:].strip("/"):
        raise errors.InvalidStoreUrl(f"store URL {url!r} names no etcd endpoint; use {FORMS}")
    endpoints = [_endpoint(url, part) for part in rest[2:].rstrip("/").split(",")]
    unknown = set(options) - {"timeout"}
    if unknown:
        raise errors.InvalidStoreUrl(f"store URL {url!r}: unknown option {sorted(unknown)[0]!r}")
    if "timeout" in options:
        try:
            if float(options["timeout"]) <= 0:
                raise ValueError
        except ValueError:
            raise errors.InvalidStoreUrl(
                f"store URL {url!r}: timeout must be a positive number of seconds"
            ) from None
    return StoreUrl("etcd", endpoints=endpoints, options=options)


def _endpoint(url: str, part: str) -> tuple[str, int]:
    host, sep, port_text = part.strip().rpartition(":")
    if not sep or not host or "/" in host:
        raise errors.InvalidStoreUrl(f"store URL {url!r}: endpoint {part!r} is not host:port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise errors.InvalidStoreUrl(f"store URL {url!r}: port {port_text!r} is not 1-65535")
    return host.strip("[]"), int(port_text)


def from_flags(
    store: str | None, etcd_endpoints: Sequence[str], data_dir: Path, *, file_name: str
) -> str:
    """The store URL from `--store`, `--etcd-endpoint`s (v0.3), or sqlite in the data folder.

    Both given is fine only when they name the same etcd endpoints.
    """
    from_etcd = f"etcd://{','.join(e.strip() for e in etcd_endpoints)}" if etcd_endpoints else ""
    if from_etcd:
        try:
            etcd = parse(from_etcd)
        except errors.InvalidStoreUrl as exc:
            raise errors.InvalidStoreUrl(f"--etcd-endpoint must be host:port: {exc}") from exc
    if store and from_etcd:
        given = parse(store)
        if given.scheme != "etcd" or sorted(given.endpoints) != sorted(etcd.endpoints):
            raise errors.InvalidStoreUrl(
                f"--store {store} and --etcd-endpoint {', '.join(etcd_endpoints)} disagree; "
                "give one of them"
            )
    if store:
        parse(store)  # a malformed URL fails here, as one line
        return store
    if from_etcd:
        return from_etcd
    return f"sqlite:{data_dir.resolve() / file_name}"
