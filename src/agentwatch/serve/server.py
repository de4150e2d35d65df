"""``agentwatch serve``: build the app from the environment and run it under uvicorn.

The CLI writes its flags into the environment and every uvicorn worker calls ``app_from_env`` (the factory),
so one process or many build the same service from the same settings.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from agentwatch.refs import load_agent
from agentwatch.serve.app import create_app, queue_for
from agentwatch.serve.auth import ApiKeys, require_safe_exposure
from agentwatch.serve.settings import ServeSettings
from agentwatch.telemetry.logs import configure_json_logs
from agentwatch.telemetry.setup import configure_telemetry

FACTORY = "agentwatch.serve.server:app_from_env"


def app_from_env() -> ASGIApp:
    """The service per ``AGENTWATCH_SERVE_*``: telemetry over OTLP per ``OTEL_*``, JSON logs on stderr."""
    settings = ServeSettings.from_env()
    if not settings.agent:
        raise SystemExit("no agent to serve: give MODULE:ATTR (or set AGENTWATCH_SERVE_AGENT).")
    agent = load_agent(settings.agent)
    service_name = os.environ.get("OTEL_SERVICE_NAME", "agentwatch-serve")
    telemetry = configure_telemetry(service_name, install_signal_handler=False)
    configure_json_logs(sys.stderr)
    app = create_app(agent, settings=settings, on_shutdown=[telemetry.shutdown])
    # What is loaded by now lives as long as the process: keep it out of every full collection. Under load the
    # collector walking the imported modules and their objects cost the service more CPU than HTTP did
    # (bench/serve_load.py; README "Serve under load").
    gc.collect()
    gc.freeze()
    return app


def check(settings: ServeSettings) -> None:
    """Fail before binding: bad keys, an open service on a public address, an agent that does not load, a bad queue."""
    keys = ApiKeys.load(settings.api_keys, settings.api_keys_file)
    require_safe_exposure(keys, settings.host, settings.insecure_no_auth)
    load_agent(settings.agent)
    queue_for(settings)


def run_server(settings: ServeSettings) -> int:
    """Serve until SIGTERM/SIGINT; a drained shutdown exits 0."""
    check(settings)
    config = uvicorn.Config(
        FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        lifespan="on",
        # asyncio's loop, even when uvloop is installed: under load uvloop accepted new connections a few per
        # second while the loop was busy with runs (hundreds waited in the accept queue for tens of seconds:
        # bench/serve_load.py at concurrency 1,000); asyncio's accepts a whole backlog per wakeup
        loop="asyncio",
        timeout_keep_alive=settings.keep_alive_s,  # a client never reuses a connection the server just closed
        timeout_graceful_shutdown=5,  # after the drain: only connections that outlive their runs remain
        log_level=logging.WARNING,
        access_log=False,  # the server span and the run_end log line already record every request
    )
    if settings.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()  # each worker drains itself on SIGTERM
        return 0
    # uvicorn re-raises the SIGTERM it handled once it is done; ignoring it then makes a clean drain exit 0.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
