"""What the simulator knows about each model: its real output limit (models overview pages, Nov 2026).

Model ids are matched by prefix, so dated snapshots (``claude-haiku-4-5-20251001``) and aliases
(``claude-haiku-4-5``) share one row. An unknown name (tests use any string) gets the largest real
limit, so no request can ask for more output than some real model would allow.
"""

from __future__ import annotations

MAX_OUTPUT_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-3-haiku", 4_096),
    ("claude-3-5-haiku", 8_192),
    ("claude-3-7-sonnet", 64_000),
    ("claude-opus-4-0", 32_000),
    ("claude-opus-4-2025", 32_000),
    ("claude-opus-4-1", 32_000),
    ("claude-sonnet-4-0", 64_000),
    ("claude-sonnet-4-2025", 64_000),
    ("claude-haiku-4-5", 64_000),
    ("claude-sonnet-4-5", 64_000),
    ("claude-opus-4-5", 64_000),
)
LARGEST_OUTPUT_TOKENS = 128_000
"""Sonnet 4.6, Opus 4.6 and later, and any model the table does not name."""


def max_output_tokens(model: str) -> int:
    """The most output tokens ``model`` may be asked for (``max_tokens`` above it is a 400)."""
    return next((limit for prefix, limit in MAX_OUTPUT_TOKENS if model.startswith(prefix)), LARGEST_OUTPUT_TOKENS)
