"""The Grafana dashboard asks only for series that `app.metrics.Metrics` exposes."""
import json
import re
from pathlib import Path

from otcdesk.app.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "otcdesk.json"


def test_dashboard_queries_only_exposed_series():
    exposed = {s.name for family in Metrics().registry.collect() for s in family.samples} | {
        f"{f.name}{suffix}" for f in Metrics().registry.collect() for suffix in ("", "_total", "_bucket", "_sum", "_count")}  # "": a gauge
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"otcdesk_[a-z_]+", e)}
    assert used and used <= exposed, sorted(used - exposed)
    families = {f.name for f in Metrics().registry.collect()}
    assert {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in used} >= families  # every family on a panel
