"""The AWS Lambda Runtime Interface Emulator running ``lambda_app.handler`` through awslambdaric."""

from __future__ import annotations

import json
import socket
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e.stack import Proc, free_ports, wait_until

HERE = Path(__file__).resolve().parent
FUNCTION = "agentwatch-fn"
ARN = f"arn:aws:lambda:us-east-1:012345678912:function:{FUNCTION}"


class Emulator:
    """One RIE process (it serves one invocation at a time: callers serialize)."""

    def __init__(self, rie: Path, workdir: Path, env: dict[str, str]) -> None:
        self.port, runtime_port = free_ports(2)
        argv = [
            str(rie),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{runtime_port}",
            sys.executable,
            "-m",
            "awslambdaric",
            "lambda_app.handler",
        ]
        env = {"AWS_LAMBDA_FUNCTION_NAME": FUNCTION, "AWS_REGION": "us-east-1", "PYTHONPATH": str(HERE), **env}
        self.proc = Proc(f"rie-{self.port}", argv, workdir, env)  # PYTHONPATH makes lambda_app importable

    def start(self) -> Emulator:
        self.proc.start()

        def listening() -> bool:
            assert self.proc.process is not None
            if self.proc.process.poll() is not None:
                raise RuntimeError(f"the emulator exited:\n{self.proc.log_tail()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        wait_until(listening, 30, 0.05, what="the Lambda emulator to listen")
        return self

    def invoke(self, event: Any, request_id: str | None = None) -> tuple[str, Any]:
        """POST one invocation; returns (request id, the handler's JSON response)."""
        request_id = request_id or str(uuid.uuid4())
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "X-Amzn-RequestId": request_id},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return request_id, json.loads(response.read())


EmulatorFactory = Callable[..., Emulator]
