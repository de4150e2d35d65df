"""The shipped collector config loads in a real collector built from the builder manifest."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
# The shipped layouts: one collector, and the two tiers (config.yaml plus an overlay, merged as the
# collector merges repeated --config flags).
LAYOUTS = {"single": (), "tier1": ("tier1.yaml",), "tier2": ("tier2.yaml",)}
# In the build for the end-to-end tests only: a second collector writes what Loki would receive to a file.
TEST_ONLY = {"exporters": {"file"}}


def config(repo: Path, overlays: tuple[str, ...] = ()) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in ("config.yaml", *overlays):
        merged = merge(merged, yaml.safe_load((repo / "collector" / name).read_text()))
    return merged


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The collector's rule for several --config files: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def used_types(cfg: dict[str, Any]) -> dict[str, set[str]]:
    """Component types per kind that the pipelines and service.extensions actually use."""
    pipelines = cfg["service"]["pipelines"].values()
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for pipeline in pipelines:
        for kind in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(kind, []):
                target = "connectors" if component_id in cfg.get("connectors", {}) else kind
                used[target].add(component_id.split("/")[0])
    used["extensions"] = {e.split("/")[0] for e in cfg["service"].get("extensions", [])}
    return used


def run(binary: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("keep_content", ["false", "true"])
def test_otelcol_validate_passes(otelcol: Path, repo: Path, keep_content: str, layout: str) -> None:
    files = [f"--config={repo / 'collector' / name}" for name in ("config.yaml", *LAYOUTS[layout])]
    result = run(otelcol, "validate", *files, env={"AGENTWATCH_COLLECTOR_KEEP_CONTENT": keep_content})
    assert result.returncode == 0, result.stdout + result.stderr


# Pre-2026 names: they still load but log a deprecation warning at start (tests/e2e checks the log);
# removed ones (logging, jaeger, loki exporters) no longer load at all.
OLD_NAMES = {
    "exporters": {"otlp", "otlphttp", "logging", "jaeger", "loki", "prometheusremotewrite"},
    "connectors": {"spanmetrics"},
}


def test_current_component_names(repo: Path) -> None:
    cfg = config(repo)
    for kind, old in OLD_NAMES.items():
        types = {c.split("/")[0] for c in cfg.get(kind, {})}
        assert not types & old, f"{kind}: old names {sorted(types & old)}"


def test_every_defined_component_is_used(repo: Path) -> None:
    cfg = config(repo)
    used = used_types(cfg)
    for kind in KINDS:
        defined = {c.split("/")[0] for c in cfg.get(kind, {})}
        assert defined == used[kind], f"{kind}: defined {sorted(defined)} but used {sorted(used[kind])}"


def test_builder_manifest_lists_exactly_the_components_the_config_uses(otelcol: Path, repo: Path) -> None:
    built = yaml.safe_load(run(otelcol, "components").stdout)
    used = {kind: set(TEST_ONLY.get(kind, ())) for kind in KINDS}
    for overlays in LAYOUTS.values():
        for kind, types in used_types(config(repo, overlays)).items():
            used[kind] |= types
    for kind in KINDS:
        in_build = {c["name"] for c in built.get(kind) or []}
        assert in_build == used[kind], f"{kind}: build has {sorted(in_build)}, configs use {sorted(used[kind])}"
    assert built["buildinfo"]["version"] == "0.159.0"


def test_builder_manifest_pins_the_compose_image_version(repo: Path, versions: dict[str, str]) -> None:
    manifest = yaml.safe_load((repo / "collector" / "builder-manifest.yaml").read_text())
    image_version = versions["OTELCOL_IMAGE"].rsplit(":", 1)[1]
    assert manifest["dist"]["version"] == image_version
    for kind in KINDS:
        for module in manifest.get(kind, []):
            assert module["gomod"].endswith(f" v{image_version}"), module
    assert versions["OTELCOL_BUILDER_VERSION"] == f"v{image_version}"


def test_collector_pipeline_order(repo: Path) -> None:
    pipelines = config(repo)["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        processors = pipeline.get("processors", [])
        if "memory_limiter" in processors:
            assert processors[0] == "memory_limiter", name
        if "batch" in processors and "tail_sampling" in processors:
            assert processors.index("batch") > processors.index("tail_sampling"), name
    # Span metrics see every span: computed in traces/in, before the forward to tail sampling.
    assert set(pipelines["traces/in"]["exporters"]) == {"span_metrics", "forward"}
    assert "tail_sampling" not in pipelines["traces/in"].get("processors", [])
    assert pipelines["traces/out"]["receivers"] == ["forward"]
    assert "span_metrics" in pipelines["metrics"]["receivers"]


def test_every_address_is_configurable_by_environment(repo: Path) -> None:
    """Tests (and operators) move every listener and exporter by env alone; defaults suit compose."""
    text = (repo / "collector" / "config.yaml").read_text()
    for key in re.findall(r"^\s*endpoint:\s*(.+)$", text, flags=re.M):
        assert key.startswith("${env:") and ":-" in key, f"endpoint not from env with a default: {key}"
