"""The Grafana dashboards (deploy/grafana/dashboards/*.json) are what their generator
writes, and are ready for file provisioning: unique uids and panel ids, every query on the
provisioned datasource through the `datasource` variable, every variable used defined,
no overlapping panels. (Their queries run against a real Prometheus in
tests/e2e/test_monitoring.py.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from deploy.grafana import dashboards

GRAFANA = Path(dashboards.__file__).resolve().parent
FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
BUILT_IN = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}


def load(name: str) -> dict:
    return json.loads((GRAFANA / "dashboards" / name).read_text())


def test_the_json_is_what_the_generator_writes():
    assert [p.name for p in FILES] == sorted(dashboards.DASHBOARDS)
    assert dashboards.main(["--check"]) == 0, "run python -m deploy.grafana.dashboards"


def test_every_panel_queries_the_provisioned_datasource():
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/siui-prometheus.yml").read_text())
    (datasource,) = provisioned["datasources"]
    uids = set()
    for path in FILES:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids and board["id"] is None
        uids.add(board["uid"])
        variable = board["templating"]["list"][0]
        assert variable["type"] == "datasource" and variable["query"] == datasource["type"] == "prometheus"
        assert variable["current"]["value"] == datasource["uid"]
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"] and panel["description"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]
            for query in panel["targets"]:
                assert query["expr"].strip() and query["datasource"] == panel["datasource"]


def test_every_variable_used_is_defined():
    for path in FILES:
        board = json.loads(path.read_text())
        defined = {v["name"] for v in board["templating"]["list"]} | BUILT_IN
        texts = [panel["title"] for panel in board["panels"]]
        texts += [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
        used = {m for text in texts for m in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)}
        assert used <= defined, (path.name, used - defined)


def test_the_house_view_chooses_among_the_houses_seen():
    board = load("siui-house.json")
    (cas,) = [v for v in board["templating"]["list"] if v["name"] == "cas"]
    assert cas["type"] == "query" and cas["query"].startswith("label_values(") and cas["query"].endswith(", cas)")
    for name in ("siui_ocsp_responses_total", "siui_ocsp_online_connects_total", "siui_certs_state_changes_total"):
        assert name in cas["query"]
    # Every query of the house view is about that house (the share's denominator aside).
    for panel in board["panels"]:
        for query in panel.get("targets", []):
            assert 'cas="$cas"' in query["expr"], panel["title"]


def test_panels_do_not_overlap():
    for path in FILES:
        taken: set[tuple[int, int]] = set()
        for panel in json.loads(path.read_text())["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                     for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & taken, panel["title"]
            taken |= cells


def test_the_dashboard_provider_loads_a_folder_of_json():
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/siui.yml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"]
