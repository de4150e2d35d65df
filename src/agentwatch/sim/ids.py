"""Object ids in the API's format: a prefix (``msg_``, ``toolu_``, ``req_``), then ``01`` and 22 base62 digits."""

from __future__ import annotations

import hashlib
import string

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ID_DIGITS = 22


def make_id(prefix: str, *parts: object) -> str:
    """A deterministic id for ``parts`` (the same parts give the same id), e.g. ``msg_01Xa…`` (28 chars)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return prefix + "01" + "".join(BASE62[byte % 62] for byte in digest[:ID_DIGITS])
