"""The rollout's metric instruments (names, units and buckets come from ``telemetry.names``)."""

from __future__ import annotations

from functools import cache

from opentelemetry.metrics import Counter, Histogram

from agentwatch.telemetry import names as n
from agentwatch.telemetry.instruments import counter, histogram


class RolloutInstruments:
    """Shadow and canary metrics; see names.py for their Prometheus series."""

    def __init__(self) -> None:
        self.shadow_runs: Counter = counter(
            n.M_SHADOW_RUNS, "Shadow runs of a candidate, by outcome and whether tools and stop reason matched"
        )
        self.shadow_similarity: Histogram = histogram(
            n.M_SHADOW_SIMILARITY, "Similarity of the candidate's answer to the primary's (0..1)", n.SIMILARITY_BUCKETS
        )
        self.shadow_spend: Counter = counter(n.M_SHADOW_SPEND, "Money the shadow candidate spent in US dollars")
        self.canary_rollbacks: Counter = counter(n.M_CANARY_ROLLBACKS, "Automatic canary rollbacks, by guard")
        self.canary_steps: Counter = counter(n.M_CANARY_STEPS, "Canary ramp steps taken, by the share reached")
        self.canary_store_errors: Counter = counter(
            n.M_CANARY_STORE_ERRORS, "Failed calls to the shared canary store, by error type and policy applied"
        )


@cache
def instruments() -> RolloutInstruments:
    """The process-wide rollout instruments (from the global meter). Never raises."""
    return RolloutInstruments()
