"""The LLM judge retries transient API failures with the runner's policy, against the real simulator with
injected faults: a 529 or a 429 is tried again (``retry-after`` honoured), a 400 never, the attempts are
bounded, the client's own retries never multiply them, and a failed attempt costs nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import pytest

from agentwatch import Agent
from agentwatch.evals import load_dataset, run_eval
from agentwatch.evals.judge import Judge, JudgeError
from agentwatch.refs import load_object
from agentwatch.retry import RetryPolicy
from agentwatch.sim import Fault, FaultPlan, Simulator

FAST = RetryPolicy(max_retries=2, base_s=0.01, max_s=0.05)
JUDGE_MODEL = "claude-sonnet-4-6"  # not the agent's model, so a fault plan can fail the judge alone
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "evals"
RUBRIC = 'The answer gives the value "299,792,458" and the unit "m/s".'
ANSWER = "The speed of light is 299,792,458 m/s."


def judge_for(sim: Simulator, mode: str = "async", **options: Any) -> Judge:
    """A judge on a client as users build one: the SDK's default retries left on."""
    client: Any
    if mode == "sync":
        client = anthropic.Anthropic(api_key="test", base_url=sim.base_url)
    else:
        client = anthropic.AsyncAnthropic(api_key="test", base_url=sim.base_url)
    options.setdefault("retry_policy", FAST)
    return Judge(client, JUDGE_MODEL, **options)


async def ask(judge: Judge) -> Any:
    return await judge.judge(rubric=RUBRIC, task="What is the speed of light in m/s?", answer=ANSWER)


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize("fault", [Fault.overloaded(), Fault.rate_limit(retry_after_ms=10), Fault.drop()])
async def test_a_transient_failure_is_retried_and_the_verdict_costs_one_answer(
    fresh_sim: Simulator, mode: str, fault: Fault
) -> None:
    fresh_sim.faults = FaultPlan(schedule=[fault])
    verdict = await ask(judge_for(fresh_sim, mode))

    assert verdict.passed
    assert len(fresh_sim.requests) == 2  # the failed attempt and one retry
    assert verdict.cost_usd and verdict.cost_usd > 0
    clean = fresh_sim.requests[-1]
    assert clean.body["model"] == JUDGE_MODEL


async def test_529_twice_then_success(fresh_sim: Simulator) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.overloaded(), Fault.overloaded()])
    verdict = await ask(judge_for(fresh_sim))
    assert verdict.passed and len(fresh_sim.requests) == 3


async def test_retry_after_is_honoured(fresh_sim: Simulator) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_ms=200)])
    started = time.monotonic()
    verdict = await ask(judge_for(fresh_sim, retry_policy=RetryPolicy(max_retries=2, base_s=0.0, max_s=1.0)))
    assert verdict.passed and len(fresh_sim.requests) == 2
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_400_is_never_retried(fresh_sim: Simulator, mode: str) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.bad_request()] * 3)
    with pytest.raises(JudgeError, match="BadRequestError") as raised:
        await ask(judge_for(fresh_sim, mode))
    assert len(fresh_sim.requests) == 1
    assert "attempts" not in str(raised.value) and raised.value.cost_usd is None


async def test_attempts_are_bounded_and_the_clients_own_retries_do_not_multiply_them(fresh_sim: Simulator) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.overloaded()] * 10)
    with pytest.raises(JudgeError, match="after 3 attempts: OverloadedError"):
        await ask(judge_for(fresh_sim))  # the SDK's default 2 retries would make it 9 requests
    assert len(fresh_sim.requests) == 3


async def test_a_retry_after_past_the_judges_timeout_is_not_waited_for(fresh_sim: Simulator) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_s=30)])
    started = time.monotonic()
    policy = RetryPolicy(max_retries=2, base_s=0.01, max_s=60.0)
    with pytest.raises(JudgeError, match="RateLimitError"):
        await ask(judge_for(fresh_sim, retry_policy=policy, timeout_s=1.0))
    assert time.monotonic() - started < 1.0 and len(fresh_sim.requests) == 1


async def test_an_eval_judges_through_an_overloaded_judge_model(fresh_sim: Simulator) -> None:
    """End to end: the agent's calls are clean, the judge's first call gets a 529; the case still passes
    and the trial's judge cost is what the same eval costs with no fault (a failed attempt bills nothing)."""
    agent: Agent = load_object(f"{EXAMPLES / 'agent.py'}:agent")
    dataset = load_dataset(EXAMPLES / "behaviour.yaml")
    case = next(c for c in dataset.cases if c.id == "judge-checks-units")
    dataset = dataset.model_copy(update={"cases": [case]})
    client = anthropic.AsyncAnthropic(api_key="test", base_url=fresh_sim.base_url, max_retries=0)
    clean = await run_eval(dataset, agent, client=client, judge_model=JUDGE_MODEL)
    fresh_sim.reset()  # a cold start again: forget the requests and any cached prompt prefix
    fresh_sim.faults = FaultPlan(schedule=[Fault.overloaded()], only_models={JUDGE_MODEL})

    report = await run_eval(dataset, agent, client=client, judge_model=JUDGE_MODEL)

    failures = [line for c in report.cases for line in c.failure_messages()]
    assert report.summary.passed, failures
    judged = [r for r in fresh_sim.requests if r.body["model"] == JUDGE_MODEL]
    assert len(judged) == 2  # the 529 and the retry
    (trial,), (clean_trial,) = report.cases[0].trials, clean.cases[0].trials
    assert trial.judge_cost_usd is not None and trial.judge_cost_usd > 0
    assert trial.judge_cost_usd == pytest.approx(clean_trial.judge_cost_usd)
