"""Custom scorers for the example datasets: plain functions, referenced as ``scorers.py:name``.

A custom scorer is called as ``fn(result, **args)`` (plus ``context=`` when it takes one) and returns
``bool``, ``(bool, explanation)`` or an ``agentwatch.evals.Score``.
"""

from agentwatch import RunResult


def cites_search(result: RunResult, phrase: str = "search results") -> tuple[bool, str]:
    """The answer says it came from the search results (a grounding check rules alone can express)."""
    if not any(call.name == "web_search" and not call.is_error for call in result.tool_calls):
        return False, "no successful web_search call to cite"
    if phrase.lower() not in result.answer.lower():
        return False, f"the answer does not mention {phrase!r}"
    return True, f"answer cites the {phrase}"
