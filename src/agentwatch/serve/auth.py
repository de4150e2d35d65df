"""API keys: ``tenant:key`` pairs, checked in constant time; each key names its tenant.

Keys come from ``AGENTWATCH_API_KEYS`` (comma-separated) and/or a file (one ``tenant:key`` per line, ``#``
comments). A key is never logged, echoed or put in telemetry: errors name the line, not the key.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from starlette.datastructures import Headers

# What a service without keys calls its one caller (loopback or --insecure-no-auth).
OPEN_TENANT = "anonymous"
HOW_TO_AUTHENTICATE = "send your API key as 'Authorization: Bearer <key>' (or 'x-api-key: <key>')"


class AuthConfigError(ValueError):
    """Keys that cannot be used, or a service that would be open to the network."""


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys. Empty means an open service (allowed only on loopback unless insecure)."""

    _pairs: tuple[tuple[bytes, str], ...] = field(default=(), repr=False)

    @classmethod
    def load(cls, inline: str = "", file: str = "") -> ApiKeys:
        entries = [(f"AGENTWATCH_API_KEYS item {i + 1}", item) for i, item in enumerate(inline.split(","))]
        if file:
            path = Path(file)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise AuthConfigError(f"cannot read the API keys file {path}: {exc.strerror}.") from None
            entries += [(f"{path} line {i + 1}", line.split("#", 1)[0]) for i, line in enumerate(lines)]
        pairs: list[tuple[bytes, str]] = []
        for where, raw in entries:
            item = raw.strip()
            if not item:
                continue
            tenant, sep, key = item.partition(":")
            if not sep or not tenant.strip() or len(key.strip()) < 16:
                raise AuthConfigError(
                    f"{where} is not 'tenant:key' with a key of at least 16 characters; fix or remove it."
                )
            pairs.append((key.strip().encode(), tenant.strip()))
        if len({key for key, _ in pairs}) != len(pairs):
            raise AuthConfigError("the same API key is configured twice; give every tenant its own key.")
        return cls(tuple(pairs))

    @property
    def enabled(self) -> bool:
        return bool(self._pairs)

    def tenant_for(self, headers: Headers) -> str | None:
        """The tenant whose key the request carries, else None. Every key is compared, in constant time."""
        if not self._pairs:
            return OPEN_TENANT
        offered = _offered_key(headers)
        if offered is None:
            return None
        found = None
        for key, tenant in self._pairs:
            if hmac.compare_digest(key, offered):
                found = tenant
        return found


def _offered_key(headers: Headers) -> bytes | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip().encode()
    key = headers.get("x-api-key", "").strip()
    return key.encode() if key else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_safe_exposure(keys: ApiKeys, host: str, insecure_no_auth: bool) -> None:
    """Refuse to serve without keys on an address other machines can reach."""
    if keys.enabled or insecure_no_auth or is_loopback(host):
        return
    raise AuthConfigError(
        f"refusing to serve on {host} without API keys: set AGENTWATCH_API_KEYS='tenant:key' or "
        "--api-keys-file FILE, bind 127.0.0.1, or pass --insecure-no-auth if something else authenticates."
    )
