"""`agentwatch worker` refuses bad input with a sentence that says what to do (no Redis needed)."""

from __future__ import annotations

import pytest

from agentwatch import Agent, Limits
from agentwatch.cli import main
from agentwatch.queue.worker import settings_for
from e2e.queue_stack import queue_agent


def worker_error(*argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", *argv])
    return str(exit_info.value)


def test_worker_needs_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTWATCH_BROKER_URL", raising=False)
    assert "--broker redis://" in worker_error(queue_agent("calc"))


def test_worker_needs_an_agent_it_can_load() -> None:
    assert "cannot import module 'no_such_module'" in worker_error("no_such_module:agent", "--broker", "redis://x:1/0")


def test_worker_needs_a_redis_url() -> None:
    assert "must be a Redis URL" in worker_error(queue_agent("calc"), "--broker", "amqp://localhost")


def test_an_agent_without_a_run_timeout_cannot_be_bounded() -> None:
    agent = Agent(name="unbounded", model="claude-haiku-4-5-20251001", limits=Limits(timeout_s=None))
    with pytest.raises(ValueError, match=r"no Limits\.timeout_s"):
        settings_for(agent, "redis://127.0.0.1:6379/0")


def test_limits_derive_from_the_run_timeout() -> None:
    agent = Agent(name="bounded", model="claude-haiku-4-5-20251001", limits=Limits(timeout_s=120))
    settings = settings_for(agent, "redis://127.0.0.1:6379/0", margin_s=30)
    assert (settings.soft_time_limit_s, settings.time_limit_s, settings.visibility_timeout_s) == (150, 180, 210)
    config = settings.celery_config()
    assert config["broker_transport_options"]["visibility_timeout"] == 210
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["accept_content"] == ["json"] and config["worker_prefetch_multiplier"] == 1
