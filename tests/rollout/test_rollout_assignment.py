"""Sticky assignment: a stable hash puts each key on one version; shares hold over 10,000 keys."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentwatch.rollout import Canary, bucket, hashing, in_share
from evals.helpers import FakeAgent, make_result

KEYS = [f"user-{i}" for i in range(10_000)]


def agents(candidate_version: str = "v2") -> tuple[FakeAgent, FakeAgent]:
    stable = FakeAgent(lambda task: make_result("stable"), version="v1")
    return stable, FakeAgent(lambda task: make_result("candidate"), version=candidate_version)


@pytest.mark.parametrize("share", [0.01, 0.05, 0.2, 0.5])
def test_shares_hold_over_10000_keys(share: float) -> None:
    canary = Canary(*agents(), share=share)
    observed = sum(canary.is_candidate(key) for key in KEYS) / len(KEYS)
    assert abs(observed - share) <= 0.01, observed


def test_same_key_same_version_every_time_and_in_every_instance() -> None:
    first = Canary(*agents(), share=0.05)
    second = Canary(*agents(), share=0.05)
    for key in KEYS[:2000]:
        chosen = first.choose(key)
        assert first.choose(key) is chosen
        assert second.is_candidate(key) == first.is_candidate(key)


def test_assignment_is_stable_across_processes() -> None:
    """Python's hash() is salted per process; the assignment must not be."""
    code = f"import runpy; print(repr(runpy.run_path({hashing.__file__!r})['bucket']('user-42', 'canary:x:v2')))"
    outputs = {
        subprocess.run(
            [sys.executable, "-I", "-c", code], env={"PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {repr(bucket("user-42", "canary:x:v2"))}


def test_growing_the_share_only_adds_keys() -> None:
    small = {k for k in KEYS if in_share(k, 0.05, "s")}
    large = {k for k in KEYS if in_share(k, 0.10, "s")}
    assert small < large


def test_a_new_candidate_version_samples_other_keys() -> None:
    v2 = Canary(*agents("v2"), share=0.1)
    v3 = Canary(*agents("v3"), share=0.1)
    on_v2 = {k for k in KEYS if v2.is_candidate(k)}
    on_v3 = {k for k in KEYS if v3.is_candidate(k)}
    assert len(on_v2 & on_v3) < 0.25 * len(on_v2)  # about 10% overlap expected, not the same users


def test_bucket_is_uniform_enough() -> None:
    deciles = [0] * 10
    for key in KEYS:
        deciles[int(bucket(key) * 10)] += 1
    assert all(900 <= count <= 1100 for count in deciles), deciles
