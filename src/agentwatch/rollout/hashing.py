"""Stable assignment: a key's place in [0, 1), the same in every process and on every machine.

``hashlib`` (SHA-256), never Python's ``hash()``, which is salted per process.
"""

from __future__ import annotations

import hashlib


def bucket(key: str, salt: str = "") -> float:
    """Where ``key`` falls in [0, 1) for ``salt``: uniform over keys, fixed for a given key and salt."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_share(key: str, share: float, salt: str = "") -> bool:
    """True for about ``share`` of all keys; growing ``share`` only ever adds keys."""
    return bucket(key, salt) < share
