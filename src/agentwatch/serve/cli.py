"""``agentwatch serve MODULE:ATTR``: flags derived from ``ServeSettings`` (``max_runs`` -> ``--max-runs``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from agentwatch.serve.settings import ServeSettings

# Flags spelled as the issue and the README spell them (the rest are --<setting-name>).
_FLAG_NAMES = {"drain_timeout_s": "--drain-timeout", "sim_latency_s": "--sim-latency", "queue_url": "--queue"}
_NO_FLAG = {"agent", "api_keys"}  # the positional argument; keys only from the environment or a file


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def add_serve_parser(sub: Any) -> None:
    parser = sub.add_parser("serve", help="serve an agent over HTTP + SSE (auth, limits, graceful drain)")
    parser.add_argument("agent", help="MODULE:ATTR or path/to/file.py:ATTR naming an Agent or a factory")
    for f in dataclasses.fields(ServeSettings):
        if f.name in _NO_FLAG:
            continue
        help_text = f"{f.metadata['help']} (env {f.metadata['env']}; default {f.default!r})"
        if f.type == "bool":
            parser.add_argument(_flag(f.name), dest=f.name, action="store_const", const="true", help=help_text)
        else:
            parser.add_argument(_flag(f.name), dest=f.name, help=help_text)
    parser.set_defaults(handler=run_serve_command)


def run_serve_command(args: argparse.Namespace) -> int:
    """Flags win over the environment; both end up in the environment every worker reads."""
    for f in dataclasses.fields(ServeSettings):
        value = args.agent if f.name == "agent" else getattr(args, f.name, None)
        if value is not None:
            os.environ[f.metadata["env"]] = str(value)
    from agentwatch.serve.server import run_server

    try:
        settings = ServeSettings.from_env()
        return run_server(settings)
    except ValueError as exc:  # LoadError, AuthConfigError and bad settings: a sentence saying what to fix
        raise SystemExit(f"agentwatch serve: {exc}") from None
