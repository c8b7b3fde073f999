"""blox.testing: harnesses for tests of blox and of code built on it (real servers, loopback).

`etcd` runs real etcd servers and clusters on 127.0.0.1 with temporary data folders; `ports`
finds free loopback ports. Nothing here is used by the services themselves.
"""

__all__ = ["etcd", "ports"]
