"""The queries of the shipped Grafana dashboards, ready to send to Prometheus or Loki.

Self-contained (no package-relative imports) so tests/docker can load it by path too.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "10m",
    "${__range}": "10m",
    "$__auto": "1m",
}


def dashboard_queries(datasource_uid: str = "prometheus") -> list[tuple[str, str]]:
    """(where, query) for every target of every shipped dashboard on the given datasource."""
    found = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                if datasource.get("uid") != datasource_uid:
                    continue
                expr = target["expr"]
                for key, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(key, value)
                for name in variables:
                    expr = expr.replace(f"${{{name}}}", ".*").replace(f"${name}", ".*")
                found.append((f"{path.name}: {panel['title']} [{target['refId']}]", expr))
    return found
