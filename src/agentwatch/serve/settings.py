"""Every setting of ``agentwatch serve``, each from an environment variable (and a command-line flag).

One table: the dataclass fields below. ``ServeSettings.from_env`` reads them, the CLI derives its flags from
them (``max_runs`` -> ``--max-runs``) and writes given flags back into the environment, so that every uvicorn
worker process builds the same settings. The README's table lists the same variables.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean: write true or false")


def parse_names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _setting(env: str, default: Any, parse: Callable[[str], Any], help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "help": help}, **kw)


@dataclass(frozen=True)
class ServeSettings:
    """How the service listens, authenticates, limits and drains. Defaults are safe for a laptop."""

    agent: str = _setting("AGENTWATCH_SERVE_AGENT", "", str, "the agent to serve, MODULE:ATTR or path/file.py:ATTR")
    host: str = _setting("AGENTWATCH_SERVE_HOST", "127.0.0.1", str, "address to bind")
    port: int = _setting("AGENTWATCH_SERVE_PORT", 8000, int, "port to bind (0: any free port)")
    workers: int = _setting("AGENTWATCH_SERVE_WORKERS", 1, int, "uvicorn worker processes")
    sim: bool = _setting("AGENTWATCH_SERVE_SIM", False, parse_bool, "start the embedded simulator as the backend")
    sim_latency_s: float = _setting("AGENTWATCH_SERVE_SIM_LATENCY_S", 0.0, float, "simulated latency per model call")
    sim_fault_rate: float = _setting(
        "AGENTWATCH_SERVE_SIM_FAULT_RATE", 0.0, float, "share of simulated calls failing transiently (429/529/500)"
    )
    api_keys: str = _setting(
        "AGENTWATCH_API_KEYS", "", str, "comma-separated tenant:key pairs (prefer the file)", repr=False
    )
    api_keys_file: str = _setting("AGENTWATCH_API_KEYS_FILE", "", str, "file of tenant:key lines")
    insecure_no_auth: bool = _setting(
        "AGENTWATCH_SERVE_INSECURE_NO_AUTH", False, parse_bool, "allow no keys on a non-loopback host"
    )
    max_body_bytes: int = _setting("AGENTWATCH_SERVE_MAX_BODY_BYTES", 1_048_576, int, "request body limit (413)")
    max_task_chars: int = _setting("AGENTWATCH_SERVE_MAX_TASK_CHARS", 32_000, int, "task length limit (422)")
    max_runs: int = _setting("AGENTWATCH_SERVE_MAX_RUNS", 100, int, "concurrent runs, whole server (429)")
    max_runs_per_tenant: int = _setting(
        "AGENTWATCH_SERVE_MAX_RUNS_PER_TENANT", 20, int, "concurrent runs per tenant (429)"
    )
    retry_after_s: int = _setting("AGENTWATCH_SERVE_RETRY_AFTER_S", 1, int, "Retry-After on 429 and 503")
    drain_timeout_s: float = _setting(
        "AGENTWATCH_SERVE_DRAIN_TIMEOUT_S", 30.0, float, "on SIGTERM, how long in-flight runs may finish"
    )
    event_buffer: int = _setting("AGENTWATCH_SERVE_EVENT_BUFFER", 10_000, int, "events kept per run for replay")
    retention_s: float = _setting(
        "AGENTWATCH_SERVE_RETENTION_S", 300.0, float, "how long a finished run's result and events are kept"
    )
    cancel_on_disconnect: bool = _setting(
        "AGENTWATCH_SERVE_CANCEL_ON_DISCONNECT", False, parse_bool, "cancel a run when its client disconnects"
    )
    keep_alive_s: int = _setting(
        "AGENTWATCH_SERVE_KEEP_ALIVE_S", 75, int, "idle keep-alive; above your load balancer's idle timeout"
    )
    heartbeat_s: float = _setting("AGENTWATCH_SERVE_HEARTBEAT_S", 15.0, float, "SSE comment heartbeat interval")
    jaeger_url: str = _setting(
        "AGENTWATCH_SERVE_JAEGER_URL", "http://localhost:16686", str, "Jaeger UI base URL for the page's trace links"
    )
    cors_origins: tuple[str, ...] = _setting(
        "AGENTWATCH_SERVE_CORS_ORIGINS", (), parse_names, "other origins whose pages may call the API (CORS)"
    )
    metadata_attributes: tuple[str, ...] = _setting(
        "AGENTWATCH_SERVE_METADATA_ATTRIBUTES", (), parse_names, "metadata keys recorded on the server span"
    )
    queue_url: str = _setting(
        "AGENTWATCH_SERVE_QUEUE_URL", "", str, 'Redis URL of the run queue: accept "mode": "async" runs', repr=False
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Read every setting from ``environ`` (default ``os.environ``); a bad value raises a clear ValueError."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise ValueError(f"{f.metadata['env']}={raw!r} is invalid: {exc}") from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Reject values that cannot work, with the variable to fix."""
        positive = ("max_body_bytes", "max_task_chars", "max_runs", "max_runs_per_tenant", "event_buffer", "workers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{env_name(name)} must be at least 1 (got {getattr(self, name)}).")
        for name in ("drain_timeout_s", "keep_alive_s", "retention_s", "heartbeat_s", "sim_latency_s", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{env_name(name)} must not be negative.")
        if not 0 <= self.sim_fault_rate <= 1:
            raise ValueError(f"{env_name('sim_fault_rate')} must be between 0 and 1.")


def env_name(setting: str) -> str:
    """The environment variable of a setting."""
    meta = next(f.metadata for f in dataclasses.fields(ServeSettings) if f.name == setting)
    return str(meta["env"])
