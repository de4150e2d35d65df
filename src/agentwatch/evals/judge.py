"""LLM-as-judge: ask a model whether an answer meets a rubric, and parse its verdict robustly.

The judge is for what rules cannot see. It costs money, so its spend is reported beside the agent's.
The local simulator acts as a deterministic judge for any request whose system prompt starts with
``JUDGE_SYSTEM``'s first sentence.

A transient API failure (429, 529, 5xx, a dropped connection) is retried with the runner's policy
(:mod:`agentwatch.retry`): jittered exponential backoff, ``retry-after`` honoured and capped, bounded
attempts, and no wait past the judge's own ``timeout_s``. The judge owns those retries (the client's
own are turned off for its calls, so attempts never multiply); a 400 or 401 is never retried.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from agentwatch import retry
from agentwatch.cost import default_pricing
from agentwatch.result import Usage

DEFAULT_JUDGE_MODEL = "claude-haiku-4-5-20251001"
MAX_ANSWER_CHARS = 20_000
# The judge's retries: the runner's defaults (``Limits``: 0.5 s doubling, every wait at most 20 s), 3 retries.
JUDGE_RETRY = retry.RetryPolicy(max_retries=3, base_s=0.5, max_s=20.0)
JUDGE_TIMEOUT_S = 120.0

JUDGE_SYSTEM = (
    "You are an evaluation judge. Decide whether the answer satisfies the rubric. "
    "Reply with only a JSON object, no other text: "
    '{"verdict": "pass" or "fail", "score": a number from 0 to 1, "reason": "one sentence"}.'
)

_PASS_WORDS = frozenset({"pass", "passed", "yes", "true", "correct"})
_FAIL_WORDS = frozenset({"fail", "failed", "no", "false", "incorrect"})


@dataclass(frozen=True)
class Verdict:
    """What the judge decided. ``cost_usd`` is the judge call's own cost (``None`` when unknown)."""

    passed: bool
    score: float
    reason: str
    cost_usd: float | None = None


def parse_verdict(text: str) -> Verdict | None:
    """Read a verdict from a judge's reply: a JSON object anywhere in it (code fences, prose around it
    allowed), else a lone ``PASS``/``FAIL`` word. ``None`` when no verdict can be read. Never raises."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            verdict = _from_mapping(obj)
            if verdict is not None:
                return verdict
    words = {w.lower() for w in re.findall(r"\b(pass(?:ed)?|fail(?:ed)?)\b", text, re.IGNORECASE)}
    said_pass = bool(words & _PASS_WORDS)
    said_fail = bool(words & _FAIL_WORDS)
    if said_pass != said_fail:
        return Verdict(passed=said_pass, score=1.0 if said_pass else 0.0, reason=text.strip()[:500])
    return None


def _from_mapping(obj: dict[str, Any]) -> Verdict | None:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    raw_verdict = lowered.get("verdict", lowered.get("pass", lowered.get("result")))
    passed: bool | None = None
    if isinstance(raw_verdict, bool):
        passed = raw_verdict
    elif isinstance(raw_verdict, str):
        word = raw_verdict.strip().lower()
        passed = True if word in _PASS_WORDS else False if word in _FAIL_WORDS else None
    score = _as_score(lowered.get("score"))
    if passed is None and score is None:
        return None
    if passed is None:
        passed = score is not None and score >= 0.5
    if score is None:
        score = 1.0 if passed else 0.0
    reason = lowered.get("reason", lowered.get("explanation", ""))
    return Verdict(passed=passed, score=score, reason=str(reason))


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            return None
    if isinstance(value, int | float):
        number = float(value)
        if number > 1 and number <= 100:  # a percentage or 0-100 scale
            number /= 100
        return min(1.0, max(0.0, number))
    return None


def judge_prompt(*, rubric: str, task: str, answer: str) -> str:
    """The user message sent to the judge: task, rubric, then the answer (last, as it may be long)."""
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[:MAX_ANSWER_CHARS] + " [answer truncated]"
    return f"Task: {task}\n\nRubric: {rubric}\n\nAnswer: {answer}"


class Judge:
    """Calls a judge model through an Anthropic client (sync or async; ``None`` builds an async one
    from the environment on first use).

    ``retry_policy`` decides which failures are tried again and how long to wait first (default
    ``JUDGE_RETRY``); ``timeout_s`` bounds one judgement's retries: a wait that would end past it is not
    taken (``None``: attempts alone bound it).
    """

    def __init__(
        self,
        client: Any = None,
        model: str = DEFAULT_JUDGE_MODEL,
        max_tokens: int = 512,
        *,
        retry_policy: retry.RetryPolicy = JUDGE_RETRY,
        timeout_s: float | None = JUDGE_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens
        self.retry_policy = retry_policy
        self.timeout_s = timeout_s
        self._calls_client: Any = None  # ``client`` with its own retries off: the judge owns them
        self._calls_client_of: Any = None

    async def judge(self, *, rubric: str, task: str, answer: str, model: str | None = None) -> Verdict:
        """Ask the judge model, retrying transient failures. Raises ``JudgeError`` when the call fails for
        good or the reply has no verdict."""
        model = model or self.model
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": self.max_tokens,
            "system": JUDGE_SYSTEM,
            "messages": [{"role": "user", "content": judge_prompt(rubric=rubric, task=task, answer=answer)}],
        }
        client = self._client()
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        attempt = 0
        while True:
            try:
                message = await _create(client, request)
                break
            except Exception as exc:
                decision = self.retry_policy.decide(exc, attempt=attempt, time_left_s=retry.time_left(deadline))
                if not decision.retry:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise JudgeError(f"judge call to {model} failed{tries}: {type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(decision.wait_s)
            attempt += 1
        text = "".join(getattr(block, "text", "") for block in getattr(message, "content", []) or [])
        cost = judge_cost(model, Usage.from_api(getattr(message, "usage", None)))
        verdict = parse_verdict(text)
        if verdict is None:
            raise JudgeError(f"judge reply has no verdict: {text[:300]!r}", cost_usd=cost)
        return Verdict(verdict.passed, verdict.score, verdict.reason, cost)

    def _client(self) -> Any:
        """The client the judge calls through: ``client`` with ``max_retries=0`` where it has
        ``with_options`` (an Anthropic client), so the SDK never retries behind the judge's policy."""
        if self.client is None:
            import anthropic

            self.client = anthropic.AsyncAnthropic()
        if self._calls_client_of is not self.client:
            with_options = getattr(self.client, "with_options", None)
            self._calls_client = with_options(max_retries=0) if callable(with_options) else self.client
            self._calls_client_of = self.client
        return self._calls_client


async def _create(client: Any, request: dict[str, Any]) -> Any:
    """One judge call: a sync client's in a thread (the event loop stays free), an async client's awaited."""
    import anthropic

    if isinstance(client, anthropic.Anthropic):
        create: Any = client.messages.create
        return await asyncio.to_thread(create, **request)
    message = client.messages.create(**request)
    return await message if inspect.isawaitable(message) else message


class JudgeError(Exception):
    """The judge could not give a verdict; ``cost_usd`` is what the attempt cost, if known."""

    def __init__(self, message: str, cost_usd: float | None = None) -> None:
        super().__init__(message)
        self.cost_usd = cost_usd


def judge_cost(model: str, usage: Usage) -> float | None:
    """The judge call's cost in USD (the runner's pricing); ``None`` for a model with no known price."""
    return default_pricing().cost(model, usage)
