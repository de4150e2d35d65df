"""``python -m agentwatch.sim`` prints its URL, serves the SDK, and exits cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import anthropic
import pytest


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_module_serves_until_interrupted(stop_signal: signal.Signals) -> None:
    command = [sys.executable, "-m", "agentwatch.sim", "--port", "0", "--fault", "overloaded=0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("agentwatch simulator listening on http://127.0.0.1:")
            base_url = line.split()[-1]
            with anthropic.Anthropic(api_key="k", base_url=base_url, max_retries=0) as client:
                message = client.messages.create(model="m", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
            assert message.stop_reason == "end_turn"
            proc.send_signal(stop_signal)
            assert proc.wait(timeout=60) == 0  # generous: a busy machine is slow, a hang is forever
        finally:
            proc.kill()


def test_bad_fault_spec_exits_with_a_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentwatch.sim", "--port", "0", "--fault", "explode=0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "unknown fault 'explode'" in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--idle-timeout", "0"], "idle_timeout_s must be a positive number"),
        (["--request-log-size", "0"], "request_log_size must be at least 1"),
        (["--rate-limit", "lots"], "expected [MODEL=]RPM,ITPM,OTPM"),
    ],
)
def test_bad_bounds_exit_with_a_message(flags: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentwatch.sim", "--port", "0", *flags], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and message in done.stderr
